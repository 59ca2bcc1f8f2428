import { useRef, useState } from "preact/hooks";
import type { AnsweredBy, ApprovalListResult, PendingApproval, ServerMessage } from "../protocol";
import { Badge, Empty, ErrorLine, Json, Section, ago, useAction, useEvents, useLoad } from "../ui";

function who(by?: AnsweredBy | null): string {
  if (!by) return "someone else";
  const name = by.user ?? by.client ?? "a client";
  return by.channel ? `${name} (${by.channel})` : name;
}

export function Approvals() {
  const list = useLoad((c) => c.request<ApprovalListResult>({ type: "approval.list" }));
  const [gone, setGone] = useState<{ title: string; text: string }[]>([]);
  // Answers sent from this page: their `approval.resolved` may arrive before the reply and
  // must not read as "answered elsewhere".
  const ours = useRef(new Set<string>());
  const drop = (id: string) => list.setData((d) => d && { ...d, approvals: d.approvals.filter((a) => a.approvalId !== id) });
  useEvents((m: ServerMessage) => {
    if (m.type === "approval.resolved") {
      const item = list.data?.approvals.find((a) => a.approvalId === m.approvalId);
      if (item && ours.current.has(m.approvalId)) {
        drop(m.approvalId);
      } else if (item) {
        drop(m.approvalId);
        setGone((g) => [{ title: item.title, text: `${m.status} by ${who(m.answeredBy)}${m.comment ? `: ${m.comment}` : ""}` }, ...g].slice(0, 5));
      }
    } else if (m.type === "workflow.approval.request" || m.type === "tool.approval.request") {
      list.reload();
    }
  });
  const items = list.data?.approvals ?? [];
  return (
    <div>
      <Section title={`Approvals inbox (${items.length})`}>
        <ErrorLine text={list.error} />
        <div aria-live="polite" class="answered">
          {gone.map((g, i) => (
            <p class="note" key={i} data-testid="answered-elsewhere">“{g.title}” was {g.text}</p>
          ))}
        </div>
        {list.data && items.length === 0 && <Empty>Nothing is waiting for you.</Empty>}
        <ul class="cards" data-testid="approvals">
          {items.map((a) => (
            <ApprovalItem key={a.approvalId} item={a} onAnswer={() => ours.current.add(a.approvalId)} onDone={() => drop(a.approvalId)} />
          ))}
        </ul>
      </Section>
    </div>
  );
}

function ApprovalItem({ item, onAnswer, onDone }: { item: PendingApproval; onAnswer: () => void; onDone: () => void }) {
  const [comment, setComment] = useState("");
  const action = useAction();
  const id = `c-${item.approvalId}`;
  const answer = async (approved: boolean) => {
    onAnswer();
    const reply =
      item.kind === "tool"
        ? await action.run({ type: "tool.approval.response", toolCallId: item.toolCallId!, approved, sessionId: item.sessionId })
        : await action.run({ type: "workflow.approval", executionId: item.executionId!, stepId: item.stepId!, approved, comment: comment || null });
    if (reply) onDone();
  };
  return (
    <li class="approval" data-approval={item.approvalId}>
      <div class="row">
        <Badge value={item.kind} />
        {item.risk && <Badge value={`risk-${item.risk}`} />}
        <strong class="title">{item.title}</strong>
      </div>
      <p class="muted">
        {item.workflowId && <>workflow <a href={`#/executions/${item.executionId}`}>{item.workflowId}</a>, step {item.stepId} · </>}
        {item.toolName && <>tool {item.toolName} · </>}
        asked {ago(item.requestedAt)}
        {item.expiresAt && <> · expires {ago(item.expiresAt)}</>}
      </p>
      {item.args !== null && item.args !== undefined && (
        <details open>
          <summary>Context</summary>
          <Json value={item.args} />
        </details>
      )}
      {item.kind !== "tool" && (
        <label class="field">
          Comment (optional)
          <input id={id} value={comment} onInput={(e) => setComment((e.target as HTMLInputElement).value)} maxLength={2000} />
        </label>
      )}
      <div class="buttons">
        <button class="primary" disabled={action.busy} onClick={() => answer(true)}>Approve</button>
        <button class="danger" disabled={action.busy} onClick={() => answer(false)}>Deny</button>
      </div>
      <ErrorLine text={action.error} />
    </li>
  );
}
