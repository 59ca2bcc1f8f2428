import { useState } from "preact/hooks";
import type { ApprovalListResult, ExecutionDetail, ServerMessage, WorkflowExecutionListResult, WorkflowExecutionResult, WorkflowListResult } from "../protocol";
import { Badge, Empty, ErrorLine, Json, Section, ago, when, useAction, useEvents, useLoad } from "../ui";

const STATUSES = ["running", "paused", "completed", "failed", "cancelled"] as const;
const SINCE: Record<string, number> = { "": 0, "1h": 3600, "24h": 86400, "7d": 7 * 86400 };

export function Executions({ id }: { id?: string }) {
  return id ? <ExecutionView id={id} /> : <ExecutionList />;
}

function ExecutionList() {
  const [workflow, setWorkflow] = useState("");
  const [status, setStatus] = useState("");
  const [since, setSince] = useState("");
  const workflows = useLoad((c) => c.request<WorkflowListResult>({ type: "workflow.list" }));
  const list = useLoad(
    (c) =>
      c.request<WorkflowExecutionListResult>({
        type: "workflow.execution.list",
        workflowId: workflow || null,
        status: (status || null) as (typeof STATUSES)[number] | null,
        limit: 200,
      }),
    [workflow, status],
  );
  useEvents((m: ServerMessage) => {
    if (m.type === "workflow.status") list.reload();
  });
  // The protocol filters by workflow and status; the time window is applied here, to the
  // newest 200 (the list is newest first).
  const cutoff = SINCE[since] ? Date.now() - SINCE[since] * 1000 : 0;
  const rows = (list.data?.executions ?? []).filter((e) => new Date(e.startedAt).getTime() >= cutoff);
  return (
    <Section title="Executions">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label class="field">Workflow
          <select value={workflow} onChange={(e) => setWorkflow((e.target as HTMLSelectElement).value)}>
            <option value="">all</option>
            {workflows.data?.workflows.map((w) => <option key={w.id} value={w.id}>{w.name}</option>)}
          </select>
        </label>
        <label class="field">Status
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">all</option>
            <option value="failed">failed only</option>
            <option value="paused">waiting</option>
            {STATUSES.filter((s) => s !== "failed" && s !== "paused").map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label class="field">Started
          <select value={since} onChange={(e) => setSince((e.target as HTMLSelectElement).value)}>
            <option value="">any time</option>
            <option value="1h">last hour</option>
            <option value="24h">last 24 hours</option>
            <option value="7d">last 7 days</option>
          </select>
        </label>
      </form>
      <ErrorLine text={list.error} />
      {list.data && rows.length === 0 && <Empty>No executions match.</Empty>}
      <table class="table" data-testid="executions">
        <thead><tr><th>Workflow</th><th>Status</th><th>Step</th><th>Started</th><th>By</th></tr></thead>
        <tbody>
          {rows.map((e) => (
            <tr key={e.id}>
              <td><a href={`#/executions/${e.id}`}>{e.workflowId}</a></td>
              <td><Badge value={e.status} />{e.waitingFor && <span class="muted"> for {e.waitingFor}</span>}</td>
              <td>{e.currentStepId ?? "—"}</td>
              <td title={when(e.startedAt)}>{ago(e.startedAt)}</td>
              <td>{e.triggeredBy}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

function ExecutionView({ id }: { id: string }) {
  const detail = useLoad((c) => c.request<WorkflowExecutionResult>({ type: "workflow.execution.get", executionId: id }), [id]);
  const cancel = useAction();
  // Who answered this execution's gates: from the answered approvals (newest 200).
  const answers = useLoad((c) => c.request<ApprovalListResult>({ type: "approval.list", history: true, limit: 200 }), [id]);
  useEvents((m: ServerMessage) => {
    if (m.type === "workflow.status" && m.executionId === id) detail.reload();
    if (m.type === "approval.resolved" && m.executionId === id) answers.reload();
  });
  const e: ExecutionDetail | undefined = detail.data?.execution;
  const live = e && (e.status === "running" || e.status === "paused");
  return (
    <Section title={e ? `Execution of ${e.workflowId}` : "Execution"} actions={<a href="#/executions">All executions</a>}>
      <ErrorLine text={detail.error} />
      {e && (
        <>
          <dl class="facts">
            <dt>Status</dt><dd data-testid="execution-status"><Badge value={e.status} />{e.waitingFor && <span class="muted"> waiting for {e.waitingFor}</span>}</dd>
            <dt>Id</dt><dd><code>{e.id}</code></dd>
            <dt>Started</dt><dd>{when(e.startedAt)}</dd>
            <dt>Finished</dt><dd>{when(e.completedAt)}</dd>
            <dt>Triggered by</dt><dd>{e.triggeredBy}</dd>
            {e.error && (<><dt>Error</dt><dd class="error">{e.error}</dd></>)}
          </dl>
          {live && (
            <div class="buttons">
              {e.waitingFor === "approval" && <a class="button" href="#/approvals">Answer in the inbox</a>}
              <button class="danger" disabled={cancel.busy} onClick={async () => { if (await cancel.run({ type: "workflow.cancel", executionId: e.id })) detail.reload(); }}>Cancel execution</button>
            </div>
          )}
          <ErrorLine text={cancel.error} />
          <h3>Input</h3>
          <Json value={e.input} />
          <h3>Timeline</h3>
          {(e.steps ?? []).length === 0 && <Empty>No step has run yet.</Empty>}
          <ol class="timeline" data-testid="timeline">
            {(e.steps ?? []).map((s) => (
              <li key={s.seq} class={`step step-${s.status}`}>
                <div class="row"><strong>{s.stepId}</strong> <Badge value={s.status} />{s.attempt > 1 && <span class="muted"> attempt {s.attempt}</span>}</div>
                <p class="muted">{when(s.startedAt)} → {when(s.finishedAt)}{s.finishedAt && ` (${((new Date(s.finishedAt).getTime() - new Date(s.startedAt).getTime()) / 1000).toFixed(2)} s)`}</p>
                {(answers.data?.approvals ?? [])
                  .filter((a) => a.executionId === e.id && a.stepId === s.stepId)
                  .map((a) => (
                    <p key={a.approvalId} class="muted">
                      <Badge value={a.status ?? "answered"} /> {a.title} — {a.answeredBy?.user ?? a.answeredBy?.client ?? "unattributed"}
                      {a.answeredBy?.channel ? ` (${a.answeredBy.channel})` : ""}, {when(a.resolvedAt)}{a.comment ? `: ${a.comment}` : ""}
                    </p>
                  ))}
                {s.error && <p class="error">{s.error}</p>}
                {s.output !== null && s.output !== undefined && <details><summary>Output</summary><Json value={s.output} /></details>}
              </li>
            ))}
            {(answers.data?.approvals ?? [])
              .filter((a) => a.executionId === e.id && !(e.steps ?? []).some((s) => s.stepId === a.stepId))
              .map((a) => (
                <li key={a.approvalId} class={`step step-${a.status === "approved" ? "success" : "failure"}`}>
                  <div class="row"><strong>{a.stepId}</strong> <Badge value={a.status ?? "answered"} /></div>
                  <p class="muted">{a.title} — {a.answeredBy?.user ?? a.answeredBy?.client ?? "unattributed"}, {when(a.resolvedAt)}{a.comment ? `: ${a.comment}` : ""}</p>
                </li>
              ))}
            {e.status === "paused" && e.currentStepId && (
              <li class="step step-waiting"><div class="row"><strong>{e.currentStepId}</strong> <Badge value="waiting" /></div><p class="muted">waiting for {e.waitingFor}</p></li>
            )}
          </ol>
        </>
      )}
    </Section>
  );
}
