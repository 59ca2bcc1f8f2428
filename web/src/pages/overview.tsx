import type { ApprovalListResult, GatewayStatusResult, HeartbeatAlertListResult, NotificationListResult, ScheduleListResult } from "../protocol";
import { Badge, Empty, ErrorLine, Section, ago, duration, useLoad } from "../ui";

export function Overview() {
  const status = useLoad((c) => c.request<GatewayStatusResult>({ type: "gateway.status" }));
  const approvals = useLoad((c) => c.request<ApprovalListResult>({ type: "approval.list" }));
  const schedules = useLoad((c) => c.request<ScheduleListResult>({ type: "schedule.list", failing: true, limit: 10 }));
  const alerts = useLoad((c) => c.request<HeartbeatAlertListResult>({ type: "heartbeat.alert.list", limit: 5 }));
  const notes = useLoad((c) => c.request<NotificationListResult>({ type: "notification.list", limit: 5 }));
  const s = status.data;
  const failing = schedules.data?.schedules ?? [];
  return (
    <div class="grid">
      <Section title="Gateway">
        <ErrorLine text={status.error} />
        {s && (
          <dl class="facts">
            <dt>Version</dt><dd>{s.version} (protocol {s.protocol})</dd>
            <dt>Uptime</dt><dd>{duration(s.uptimeS)}</dd>
            <dt>Nodes</dt><dd>{s.nodes ?? 1}{s.nodeId ? ` (this: ${s.nodeId})` : ""}</dd>
            <dt>Database</dt><dd>{s.database}</dd>
            <dt>Connections</dt><dd>{s.connections}</dd>
            {s.telegram && (<><dt>Telegram</dt><dd>{s.telegram.state}</dd></>)}
          </dl>
        )}
      </Section>
      <Section title="Pending approvals" actions={<a href="#/approvals">Open inbox</a>}>
        {approvals.data && (approvals.data.approvals.length === 0 ? <Empty>Nothing is waiting for you.</Empty> : (
          <ul class="list">
            {approvals.data.approvals.slice(0, 5).map((a) => (
              <li key={a.approvalId}><Badge value={a.kind} /> {a.title} <span class="muted">{ago(a.requestedAt)}</span></li>
            ))}
          </ul>
        ))}
        {approvals.data && <p class="big" data-testid="pending-count">{approvals.data.approvals.length} pending</p>}
      </Section>
      <Section title="Failing schedules" actions={<a href="#/schedules">Schedules</a>}>
        {schedules.data && (failing.length === 0 ? <Empty>No schedule is failing.</Empty> : (
          <ul class="list">
            {failing.map((x) => (
              <li key={x.id}><Badge value={x.state} /> {x.name} <span class="muted">{x.stateReason ?? `${x.consecutiveFailures} failures in a row`}</span></li>
            ))}
            {schedules.data.total > failing.length && <li class="muted">and {schedules.data.total - failing.length} more</li>}
          </ul>
        ))}
      </Section>
      <Section title="Recent alerts" actions={<a href="#/heartbeat">Heartbeat</a>}>
        {alerts.data && (alerts.data.alerts.length === 0 ? <Empty>No alerts.</Empty> : (
          <ul class="list">
            {alerts.data.alerts.map((a) => (
              <li key={a.alertId}>{a.message ?? a.checks.filter((c) => c.actionNeeded).map((c) => c.description).join("; ")} <span class="muted">{ago(a.timestamp)}</span></li>
            ))}
          </ul>
        ))}
      </Section>
      <Section title="Recent notifications" actions={<a href="#/notifications">All</a>}>
        {notes.data && (notes.data.notifications.length === 0 ? <Empty>No notifications.</Empty> : (
          <ul class="list">
            {notes.data.notifications.map((n) => (
              <li key={n.notificationId}><Badge value={n.level} /> {n.message} <span class="muted">{ago(n.timestamp)}</span></li>
            ))}
          </ul>
        ))}
      </Section>
    </div>
  );
}
