import { useState } from "preact/hooks";
import type { WorkflowInfo, WorkflowInput, WorkflowListResult, WorkflowTriggered } from "../protocol";
import { Badge, Empty, ErrorLine, Section, useAction, useLoad } from "../ui";

export function Workflows() {
  const list = useLoad((c) => c.request<WorkflowListResult>({ type: "workflow.list" }));
  const reload = useAction();
  const [open, setOpen] = useState<string | null>(null);
  return (
    <Section
      title="Workflows"
      actions={<button disabled={reload.busy} onClick={async () => { const r = await reload.run<WorkflowListResult>({ type: "workflow.reload" }); if (r) list.setData(r); }}>Reload files</button>}
    >
      <ErrorLine text={list.error || reload.error} />
      {list.data && list.data.workflows.length === 0 && <Empty>No workflows: put YAML files in the data directory's workflows/ folder.</Empty>}
      <ul class="cards">
        {list.data?.workflows.map((w) => (
          <li key={w.id} class="workflow" data-workflow={w.id}>
            <div class="row">
              <strong>{w.name}</strong> <code class="muted">{w.id}</code> <Badge value={w.valid ? "valid" : "invalid"} />
            </div>
            {w.description && <p>{w.description}</p>}
            <p class="muted">{w.definitionPath}</p>
            {w.error && <pre class="error">{w.error}</pre>}
            {w.valid && (open === w.id ? <TriggerForm workflow={w} onClose={() => setOpen(null)} /> : <button onClick={() => setOpen(w.id)}>Run…</button>)}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function initial(spec: WorkflowInput): string {
  if (spec.default === undefined || spec.default === null) return spec.type === "boolean" ? "false" : "";
  return typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default);
}

function convert(name: string, spec: WorkflowInput, raw: string): unknown {
  if (spec.type === "string") return raw;
  if (spec.type === "boolean") return raw === "true";
  if (spec.type === "number" || spec.type === "integer") {
    const n = Number(raw);
    if (raw.trim() === "" || Number.isNaN(n) || (spec.type === "integer" && !Number.isInteger(n))) throw new Error(`${name} must be ${spec.type === "integer" ? "a whole number" : "a number"}`);
    return n;
  }
  try {
    return JSON.parse(raw);
  } catch {
    throw new Error(`${name} must be JSON (${spec.type})`);
  }
}

/** A form generated from the workflow's declared inputs; the gateway validates again. */
function TriggerForm({ workflow, onClose }: { workflow: WorkflowInfo; onClose: () => void }) {
  const inputs = Object.entries(workflow.inputs ?? {});
  const [values, setValues] = useState<Record<string, string>>(Object.fromEntries(inputs.map(([k, s]) => [k, initial(s)])));
  const action = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    const input: Record<string, unknown> = {};
    try {
      for (const [name, spec] of inputs) {
        const raw = values[name] ?? "";
        if (raw === "" && spec.type !== "string" && !spec.required) continue;
        if (raw === "" && spec.type === "string" && !spec.required && spec.default == null) continue;
        input[name] = convert(name, spec, raw);
      }
    } catch (err) {
      action.setError((err as Error).message);
      return;
    }
    const reply = await action.run<WorkflowTriggered>({ type: "workflow.trigger", workflowId: workflow.id, input });
    if (reply) location.hash = `#/executions/${reply.executionId}`;
  };
  return (
    <form class="form" onSubmit={submit} aria-label={`Run ${workflow.name}`}>
      {inputs.length === 0 && <p class="muted">This workflow takes no input.</p>}
      {inputs.map(([name, spec]) => (
        <label class="field" key={name}>
          {name}{spec.required ? " *" : ""} <span class="muted">({spec.type}){spec.description ? ` ${spec.description}` : ""}</span>
          {spec.type === "boolean" ? (
            <select name={name} value={values[name]} onChange={(e) => setValues({ ...values, [name]: (e.target as HTMLSelectElement).value })}>
              <option value="true">true</option>
              <option value="false">false</option>
            </select>
          ) : spec.type === "object" || spec.type === "array" ? (
            <textarea name={name} value={values[name]} required={spec.required} onInput={(e) => setValues({ ...values, [name]: (e.target as HTMLTextAreaElement).value })} />
          ) : (
            spec.type === "string" ? (
              <input name={name} type="text" value={values[name]} required={spec.required} onInput={(e) => setValues({ ...values, [name]: (e.target as HTMLInputElement).value })} />
            ) : (
              <input name={name} type="number" step={spec.type === "number" ? "any" : "1"} value={values[name]} required={spec.required} onInput={(e) => setValues({ ...values, [name]: (e.target as HTMLInputElement).value })} />
            )
          )}
        </label>
      ))}
      <div class="buttons">
        <button class="primary" type="submit" disabled={action.busy}>Run {workflow.name}</button>
        <button type="button" onClick={onClose}>Close</button>
      </div>
      <ErrorLine text={action.error} />
    </form>
  );
}
