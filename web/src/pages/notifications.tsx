import type { NotificationListResult, ServerMessage } from "../protocol";
import { Badge, Empty, ErrorLine, Section, ago, when, useEvents, useLoad } from "../ui";

export function Notifications() {
  const list = useLoad((c) => c.request<NotificationListResult>({ type: "notification.list", limit: 100 }));
  useEvents((m: ServerMessage) => {
    if (m.type === "notification") list.reload();
  });
  return (
    <Section title="Notifications">
      <ErrorLine text={list.error} />
      {list.data && list.data.notifications.length === 0 && <Empty>No notifications yet: workflows send them with the notify tool.</Empty>}
      <ul class="cards" data-testid="notifications">
        {list.data?.notifications.map((n) => (
          <li key={n.notificationId}>
            <div class="row"><Badge value={n.level} /> <span class="muted" title={when(n.timestamp)}>{ago(n.timestamp)}</span>{n.source && <span class="muted"> · {n.source}</span>}</div>
            <p>{n.message}</p>
            {n.executionId && <a href={`#/executions/${n.executionId}`}>from execution {n.executionId.slice(0, 8)}{n.stepId ? `, step ${n.stepId}` : ""}</a>}
          </li>
        ))}
      </ul>
    </Section>
  );
}
