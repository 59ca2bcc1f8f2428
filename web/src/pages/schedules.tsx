import { useEffect, useState } from "preact/hooks";
import type { ActiveHoursSpec, ScheduleInfo, ScheduleListResult, SchedulePreviewResult, ScheduleRunsResult, ServerMessage, WorkflowListResult } from "../protocol";
import { Badge, Empty, ErrorLine, Section, ago, when, useAction, useConn, useEvents, useLoad } from "../ui";

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

function days(field: string): string {
  if (field === "*") return "every day";
  if (field === "1-5" || field === "MON-FRI") return "on weekdays";
  if (["0,6", "6,0", "6-7", "SAT,SUN"].includes(field.toUpperCase())) return "on weekends";
  const names = field.split(",").map((d) => (/^\d$/.test(d) ? DAYS[Number(d)] : d));
  return `on ${names.join(", ")}`;
}

/** "at 08:30 on weekdays" for the common cron shapes; the expression itself otherwise. */
export function describeTrigger(s: Pick<ScheduleInfo, "cronExpression" | "every" | "at" | "timezone">): string {
  let text: string;
  if (s.every) text = `every ${s.every}`;
  else if (s.at) text = `once at ${when(s.at)}`;
  else if (s.cronExpression) {
    const f = s.cronExpression.trim().split(/\s+/);
    const step = /^\*\/(\d+)$/;
    if (f.length === 5 && /^\d+$/.test(f[0]) && /^\d+$/.test(f[1]) && f[2] === "*" && f[3] === "*") {
      text = `at ${f[1].padStart(2, "0")}:${f[0].padStart(2, "0")} ${days(f[4])}`;
    } else if (f.length === 5 && step.test(f[0]) && f.slice(1).every((x) => x === "*")) {
      text = `every ${f[0].match(step)![1]} minutes`;
    } else if (f.length === 5 && f[0] === "*" && f.slice(1).every((x) => x === "*")) {
      text = "every minute";
    } else if (f.length === 5 && /^\d+$/.test(f[0]) && f.slice(1).every((x) => x === "*")) {
      text = `every hour at minute ${f[0]}`;
    } else text = `cron ${s.cronExpression}`;
  } else text = "no trigger";
  return `${text}, ${s.timezone}`;
}

/** Schedules per page; "Show more" asks for the first page again, larger, up to the protocol's cap. */
const PAGE = 200;
const MAX_PAGE = 1000;

export function Schedules() {
  const [limit, setLimit] = useState(PAGE);
  const list = useLoad((c) => c.request<ScheduleListResult>({ type: "schedule.list", limit }), [limit]);
  const [editing, setEditing] = useState<ScheduleInfo | "new" | null>(null);
  const [history, setHistory] = useState<string | null>(null);
  useEvents((m: ServerMessage) => {
    if (m.type === "schedule.run" || m.type === "schedule.disabled") list.reload();
  });
  return (
    <div>
      <Section title="Schedules" actions={<button class="primary" onClick={() => setEditing("new")}>New schedule</button>}>
        <ErrorLine text={list.error} />
        {editing && <ScheduleForm schedule={editing === "new" ? null : editing} onDone={() => { setEditing(null); list.reload(); }} />}
        {list.data && list.data.schedules.length === 0 && <Empty>No schedules yet.</Empty>}
        <ul class="cards" data-testid="schedules">
          {list.data?.schedules.map((s) => (
            <ScheduleItem key={s.id} s={s} onChange={list.reload} onEdit={() => setEditing(s)} onHistory={() => setHistory(history === s.id ? null : s.id)} showHistory={history === s.id} />
          ))}
        </ul>
        {list.data && list.data.nextCursor && (limit < MAX_PAGE
          ? <button data-testid="more-schedules" onClick={() => setLimit(Math.min(limit + PAGE, MAX_PAGE))}>Show more ({list.data.schedules.length} of {list.data.total})</button>
          : <p class="muted">Showing the first {list.data.schedules.length} of {list.data.total}; <code>hearth schedule list</code> shows them all.</p>)}
      </Section>
    </div>
  );
}

function ScheduleItem({ s, onChange, onEdit, onHistory, showHistory }: { s: ScheduleInfo; onChange: () => void; onEdit: () => void; onHistory: () => void; showHistory: boolean }) {
  const action = useAction();
  const act = async (m: Parameters<typeof action.run>[0]) => {
    if (await action.run(m)) onChange();
  };
  return (
    <li class="schedule" data-schedule={s.name}>
      <div class="row"><strong>{s.name}</strong> <Badge value={s.state} /> {s.target === "heartbeat" ? <Badge value="heartbeat" /> : <span class="muted">→ {s.workflowId}</span>}</div>
      <p class="trigger">{describeTrigger(s)}</p>
      {s.activeHours && <p class="muted">active {s.activeHours.start}–{s.activeHours.end}{s.activeHours.daysOfWeek ? ` on days ${s.activeHours.daysOfWeek.join(",")}` : ""}</p>}
      <dl class="facts compact">
        <dt>Next run</dt><dd title={when(s.nextRun)}>{s.nextRun ? ago(s.nextActiveRun ?? s.nextRun) : "—"}</dd>
        <dt>Last run</dt><dd data-testid="last-run">{s.lastRun ? <><Badge value={s.lastRun.status} /> {ago(s.lastRun.scheduledFor)}</> : "never"}</dd>
        <dt>Runs</dt><dd data-testid="run-count">{s.runCount}{s.maxRuns ? ` of ${s.maxRuns}` : ""}</dd>
        {s.stateReason && (<><dt>Why</dt><dd>{s.stateReason}</dd></>)}
      </dl>
      <div class="buttons">
        {s.enabled ? <button disabled={action.busy} onClick={() => act({ type: "schedule.update", scheduleId: s.id, enabled: false })}>Pause</button>
          : <button disabled={action.busy} onClick={() => act({ type: "schedule.update", scheduleId: s.id, enabled: true })}>Resume</button>}
        <button disabled={action.busy} onClick={() => act({ type: "schedule.trigger", scheduleId: s.id })}>Run now</button>
        {s.target !== "heartbeat" && <button onClick={onEdit}>Edit</button>}
        <button onClick={onHistory} aria-expanded={showHistory}>History</button>
        {s.target !== "heartbeat" && <button class="danger" disabled={action.busy} onClick={() => confirm(`Delete the schedule “${s.name}”?`) && act({ type: "schedule.delete", scheduleId: s.id })}>Delete</button>}
      </div>
      <ErrorLine text={action.error} />
      {showHistory && <RunHistory id={s.id} />}
    </li>
  );
}

function RunHistory({ id }: { id: string }) {
  const runs = useLoad((c) => c.request<ScheduleRunsResult>({ type: "schedule.runs", scheduleId: id, limit: 20 }), [id]);
  useEvents((m) => {
    if (m.type === "schedule.run" && m.scheduleId === id) runs.reload();
  });
  return (
    <div class="history">
      <ErrorLine text={runs.error} />
      {runs.data && runs.data.runs.length === 0 && <Empty>No runs yet.</Empty>}
      <table class="table">
        <thead><tr><th>Scheduled for</th><th>Status</th><th>Reason</th><th>Execution</th></tr></thead>
        <tbody>
          {runs.data?.runs.map((r) => (
            <tr key={r.runId}>
              <td>{when(r.scheduledFor)}</td>
              <td><Badge value={r.status} /></td>
              <td>{r.reason ?? ""}{r.missedCount ? ` (${r.missedCount} missed)` : ""}</td>
              <td>{r.executionId ? <a href={`#/executions/${r.executionId}`}>open</a> : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type Kind = "cron" | "every" | "at";

function ScheduleForm({ schedule, onDone }: { schedule: ScheduleInfo | null; onDone: () => void }) {
  const conn = useConn();
  const workflows = useLoad((c) => c.request<WorkflowListResult>({ type: "workflow.list" }));
  const [name, setName] = useState(schedule?.name ?? "");
  const [kind, setKind] = useState<Kind>(schedule?.every ? "every" : schedule?.at ? "at" : "cron");
  const [expr, setExpr] = useState(schedule?.cronExpression ?? schedule?.every ?? (schedule?.at ? schedule.at.slice(0, 16) : "") ?? "");
  const [zone, setZone] = useState(schedule?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone);
  const [workflowId, setWorkflowId] = useState(schedule?.workflowId ?? "");
  const [hoursOn, setHoursOn] = useState(Boolean(schedule?.activeHours));
  const [start, setStart] = useState(schedule?.activeHours?.start ?? "08:00");
  const [end, setEnd] = useState(schedule?.activeHours?.end ?? "22:00");
  const [preview, setPreview] = useState<SchedulePreviewResult | null>(null);
  const [previewError, setPreviewError] = useState("");
  const action = useAction();
  const trigger = { cronExpression: kind === "cron" ? expr : null, every: kind === "every" ? expr : null, at: kind === "at" ? expr : null };
  const activeHours: ActiveHoursSpec | null = hoursOn ? { start, end } : null;

  useEffect(() => {
    if (!expr.trim()) {
      setPreview(null);
      return;
    }
    // Debounced: one preview per pause in typing, never one per key.
    const t = setTimeout(() => {
      conn.request<SchedulePreviewResult>({ type: "schedule.preview", ...trigger, timezone: zone || null, activeHours, count: 5 }).then(
        (r) => { setPreview(r); setPreviewError(""); },
        (e: Error) => { setPreview(null); setPreviewError(e.message); },
      );
    }, 250);
    return () => clearTimeout(t);
  }, [kind, expr, zone, hoursOn, start, end]);

  const submit = async (e: Event) => {
    e.preventDefault();
    // Absent fields stay as they are on an update; `activeHours: null` clears the window.
    const fields = Object.fromEntries(
      Object.entries({ name, ...trigger, timezone: zone || null, workflowId: workflowId || null, activeHours }).filter(([k, v]) => v !== null || k === "activeHours"),
    ) as { name: string };
    const ok = schedule
      ? await action.run({ type: "schedule.update", scheduleId: schedule.id, ...fields })
      : await action.run({ type: "schedule.create", ...fields });
    if (ok) onDone();
  };
  return (
    <form class="form panel" onSubmit={submit} aria-label={schedule ? "Edit schedule" : "New schedule"}>
      <h3>{schedule ? `Edit ${schedule.name}` : "New schedule"}</h3>
      <label class="field">Name<input name="name" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} /></label>
      <label class="field">Workflow
        <select name="workflow" required value={workflowId} onChange={(e) => setWorkflowId((e.target as HTMLSelectElement).value)}>
          <option value="">choose…</option>
          {workflows.data?.workflows.filter((w) => w.valid).map((w) => <option key={w.id} value={w.id}>{w.name}</option>)}
        </select>
      </label>
      <fieldset class="field">
        <legend>Trigger</legend>
        {(["cron", "every", "at"] as Kind[]).map((k) => (
          <label class="inline" key={k}><input type="radio" name="kind" checked={kind === k} onChange={() => setKind(k)} /> {k === "cron" ? "cron" : k === "every" ? "every (30m, 2h)" : "once at"}</label>
        ))}
        <label class="field">{kind === "cron" ? "Cron expression" : kind === "every" ? "Interval" : "Date and time"}
          <input name="trigger" required value={expr} placeholder={kind === "cron" ? "30 8 * * 1-5" : kind === "every" ? "15m" : "2026-12-24T18:00"} onInput={(e) => setExpr((e.target as HTMLInputElement).value)} />
        </label>
      </fieldset>
      <label class="field">Time zone<input name="timezone" value={zone} onInput={(e) => setZone((e.target as HTMLInputElement).value)} /></label>
      <label class="inline"><input type="checkbox" checked={hoursOn} onChange={(e) => setHoursOn((e.target as HTMLInputElement).checked)} /> Only during active hours</label>
      {hoursOn && (
        <div class="row">
          <label class="field">From<input type="time" value={start} onInput={(e) => setStart((e.target as HTMLInputElement).value)} /></label>
          <label class="field">To<input type="time" value={end} onInput={(e) => setEnd((e.target as HTMLInputElement).value)} /></label>
        </div>
      )}
      <div class="preview" aria-live="polite" data-testid="preview">
        <h4>Next runs</h4>
        {expr && <p class="trigger">{describeTrigger({ ...trigger, timezone: zone })}</p>}
        <ErrorLine text={previewError} />
        <ol>
          {preview?.ticks.map((t) => (
            <li key={t.at} class={t.skipped ? "skipped" : ""}>{when(t.at)}{t.skipped && <span class="muted"> — skipped (outside active hours)</span>}</li>
          ))}
        </ol>
      </div>
      <div class="buttons">
        <button class="primary" type="submit" disabled={action.busy}>{schedule ? "Save" : "Create schedule"}</button>
        <button type="button" onClick={onDone}>Cancel</button>
      </div>
      <ErrorLine text={action.error} />
    </form>
  );
}
