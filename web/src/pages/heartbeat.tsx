import type { HeartbeatAlertListResult, HeartbeatRunResult, HeartbeatStatusResult, ServerMessage } from "../protocol";
import { Badge, Empty, ErrorLine, Section, ago, when, useAction, useEvents, useLoad } from "../ui";

export function Heartbeat() {
  const status = useLoad((c) => c.request<HeartbeatStatusResult>({ type: "heartbeat.status" }));
  const alerts = useLoad((c) => c.request<HeartbeatAlertListResult>({ type: "heartbeat.alert.list", limit: 20 }));
  const run = useAction();
  useEvents((m: ServerMessage) => {
    if (m.type === "heartbeat.alert") alerts.reload();
  });
  const s = status.data;
  const runNow = async () => {
    const r = await run.run<HeartbeatRunResult>({ type: "heartbeat.run" });
    if (r) {
      status.reload();
      alerts.reload();
    }
  };
  return (
    <div class="grid">
      <Section title="Heartbeat" actions={<button class="primary" disabled={run.busy} onClick={runNow}>{run.busy ? "Running…" : "Run now"}</button>}>
        <ErrorLine text={status.error || run.error} />
        {s && (
          <dl class="facts">
            <dt>State</dt><dd><Badge value={s.enabled ? "enabled" : "disabled"} />{!s.configured && <span class="muted"> (not configured)</span>}</dd>
            <dt>Checklist</dt><dd><code>{s.heartbeatPath}</code></dd>
            <dt>Interval</dt><dd>every {s.interval} min, {s.timezone}</dd>
            <dt>Active hours</dt><dd>{s.activeHours ? `${s.activeHours.start}–${s.activeHours.end}` : "always"}</dd>
            <dt>Next run</dt><dd title={when(s.nextRun)}>{ago(s.nextRun)}</dd>
            <dt>Last run</dt>
            <dd data-testid="heartbeat-last">{s.lastRun ? <><Badge value={s.lastRun.status} /> {s.lastRun.trigger}, {ago(s.lastRun.startedAt)}{s.lastRun.reason ? ` — ${s.lastRun.reason}` : ""}{s.lastRun.alerted ? " (alerted)" : ""}</> : "never"}</dd>
            {(s.consecutiveErrors ?? 0) > 0 && (<><dt>Errors in a row</dt><dd class="error">{s.consecutiveErrors}</dd></>)}
          </dl>
        )}
      </Section>
      <Section title="Alerts">
        <ErrorLine text={alerts.error} />
        {alerts.data && alerts.data.alerts.length === 0 && <Empty>No alerts: nothing needed you.</Empty>}
        <ul class="cards">
          {alerts.data?.alerts.map((a) => (
            <li key={a.alertId}>
              <div class="row"><Badge value={a.kind} /> <span class="muted">{when(a.timestamp)}</span></div>
              {a.message && <p>{a.message}</p>}
              <ul>
                {a.checks.map((c, i) => <li key={i} class={c.actionNeeded ? "error" : ""}>{c.description}{c.details ? `: ${c.details}` : ""}</li>)}
              </ul>
            </li>
          ))}
        </ul>
      </Section>
    </div>
  );
}
