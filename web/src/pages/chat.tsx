import { useEffect, useRef, useState } from "preact/hooks";
import { renderMarkdown } from "../markdown";
import type { ChatStreamStart, HistoryEntry, ServerMessage, SessionHistoryResult, SessionListResult, Usage } from "../protocol";
import { Badge, ErrorLine, Json, ago, useAction, useConn, useEvents, useLoad } from "../ui";

type ToolCall = { id: string; name: string; args: unknown; result?: unknown; error?: string; approval?: { risk: string; sessionId?: string | null; answered?: string } };
type Stream = { text: string; tools: ToolCall[]; usage?: Usage; cost?: number | null; status?: string; error?: string };
type Entry = { kind: "user"; text: string } | { kind: "assistant"; requestId: string } | { kind: "history"; entry: HistoryEntry };

export function Chat({ id }: { id?: string }) {
  const conn = useConn();
  const [shown, setShown] = useState(100);
  const sessions = useLoad((c) => c.request<SessionListResult>({ type: "session.list", limit: shown }), [shown]);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [streams, setStreams] = useState<Record<string, Stream>>({});
  const [draft, setDraft] = useState("");
  const [sessionId, setSessionId] = useState<string | undefined>(id);
  const send = useAction();
  const bottom = useRef<HTMLDivElement>(null);
  const started = useRef<string | null>(null);
  const composer = useRef<HTMLTextAreaElement>(null);

  useEffect(() => setSessionId(id), [id]);
  const history = useLoad(
    async (c) => (sessionId ? c.request<SessionHistoryResult>({ type: "session.history", sessionId, limit: 200 }) : null),
    [sessionId],
  );
  useEffect(() => {
    // A session this page just started is already on screen, streaming: keep it.
    if (sessionId && sessionId === started.current) return;
    if (history.data) setEntries(history.data.messages.map((entry) => ({ kind: "history", entry })));
    else if (!sessionId) setEntries([]);
  }, [history.data, sessionId]);

  const update = (requestId: string, f: (s: Stream) => Stream) =>
    setStreams((all) => ({ ...all, [requestId]: f(all[requestId] ?? { text: "", tools: [] }) }));
  const tool = (s: Stream, id: string, f: (t: ToolCall) => ToolCall, name = "") => {
    const found = s.tools.find((t) => t.id === id);
    const next = f(found ?? { id, name, args: null });
    return { ...s, tools: found ? s.tools.map((t) => (t.id === id ? next : t)) : [...s.tools, next] };
  };

  useEvents((m: ServerMessage) => {
    switch (m.type) {
      case "chat.stream.delta":
        update(m.requestId, (s) => ({ ...s, text: s.text + m.delta }));
        break;
      case "chat.stream.end":
        update(m.requestId, (s) => ({ ...s, usage: m.usage, cost: m.cost, status: m.status }));
        sessions.reload();
        break;
      case "tool.call":
        update(m.requestId, (s) => tool(s, m.toolCallId, (t) => ({ ...t, name: m.toolName, args: m.args }), m.toolName));
        break;
      case "tool.approval.request":
        update(m.requestId, (s) => tool(s, m.toolCallId, (t) => ({ ...t, name: m.toolName, args: m.args, approval: { risk: m.risk, sessionId: m.sessionId } }), m.toolName));
        break;
      case "tool.result":
        update(m.requestId, (s) => tool(s, m.toolCallId, (t) => ({ ...t, result: m.result }), m.toolName));
        break;
      case "tool.error":
        update(m.requestId, (s) => tool(s, m.toolCallId, (t) => ({ ...t, error: m.error }), m.toolName));
        break;
      case "approval.resolved":
        if (m.toolCallId) {
          setStreams((all) => Object.fromEntries(Object.entries(all).map(([k, s]) => [k, { ...s, tools: s.tools.map((t) => (t.id === m.toolCallId && t.approval && !t.approval.answered ? { ...t, approval: { ...t.approval, answered: m.status } } : t)) }])));
        }
        break;
      case "error":
        if (m.requestId) update(m.requestId, (s) => ({ ...s, error: m.message }));
        break;
    }
  });

  useEffect(() => bottom.current?.scrollIntoView({ block: "end" }), [entries, streams]);

  const submit = async (e: Event) => {
    e.preventDefault();
    // From the field itself: Enter right after typing may precede the re-render.
    const content = (composer.current?.value ?? draft).trim();
    if (!content) return;
    setEntries((all) => [...all, { kind: "user", text: content }]);
    setDraft("");
    const reply = await send.run<ChatStreamStart>({ type: "chat.send", content, sessionId: sessionId ?? null });
    if (reply) {
      setEntries((all) => [...all, { kind: "assistant", requestId: reply.requestId }]);
      if (!sessionId) {
        started.current = reply.sessionId;
        setSessionId(reply.sessionId);
        // Keep the address in step without reloading the conversation shown.
        window.history.replaceState(null, "", `#/chat/${reply.sessionId}`);
      }
    }
  };

  return (
    <div class="chat">
      <aside class="sessions" aria-label="Chat sessions">
        <a class="button primary" href="#/chat" onClick={() => { setSessionId(undefined); setEntries([]); }}>New chat</a>
        <ul>
          {sessions.data?.sessions.map((s) => (
            <li key={s.sessionId} class={s.sessionId === sessionId ? "current" : ""}>
              <a href={`#/chat/${s.sessionId}`}>{s.title ?? s.sessionKey}</a>
              <span class="muted"> {s.messageCount} msgs · {ago(s.updatedAt)}</span>
            </li>
          ))}
        </ul>
        {sessions.data?.nextCursor && shown < 1000 && (
          <button onClick={() => setShown(Math.min(shown + 100, 1000))}>Older ({sessions.data.sessions.length} of {sessions.data.total})</button>
        )}
      </aside>
      <section class="conversation" aria-label="Conversation">
        <div class="messages" aria-live="polite" data-testid="messages">
          {entries.map((e, i) =>
            e.kind === "user" ? (
              <div class="msg user" key={i}>{e.text}</div>
            ) : e.kind === "history" ? (
              <HistoryItem key={i} entry={e.entry} />
            ) : (
              <Reply key={e.requestId} stream={streams[e.requestId]} conn={conn} sessionId={sessionId} />
            ),
          )}
          <div ref={bottom} />
        </div>
        <form class="composer" onSubmit={submit}>
          <label class="sr-only" for="chat-input">Message</label>
          <textarea
            id="chat-input"
            ref={composer}
            rows={2}
            value={draft}
            placeholder="Message the agent (Enter sends, Shift+Enter for a new line)"
            onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) submit(e);
            }}
          />
          <button class="primary" type="submit" disabled={send.busy || !draft.trim()}>Send</button>
        </form>
        <ErrorLine text={send.error} />
      </section>
    </div>
  );
}

function HistoryItem({ entry }: { entry: HistoryEntry }) {
  if (entry.role === "user") return <div class="msg user">{entry.content}</div>;
  if (entry.role === "tool") return <div class="msg tool"><Badge value="tool" /> {entry.toolName} {entry.content && <pre class="json">{entry.content}</pre>}</div>;
  if (entry.role === "assistant" && entry.toolName) return <div class="msg tool"><Badge value="call" /> {entry.toolName} <Json value={entry.args} /></div>;
  return <div class="msg assistant markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(entry.content ?? "") }} />;
}

function Reply({ stream, conn, sessionId }: { stream?: Stream; conn: ReturnType<typeof useConn>; sessionId?: string }) {
  const [error, setError] = useState("");
  const s = stream ?? { text: "", tools: [] };
  const answer = (t: ToolCall, approved: boolean, always = false) =>
    conn.request({ type: "tool.approval.response", toolCallId: t.id, approved, sessionApprove: always || null, sessionId: t.approval?.sessionId ?? sessionId ?? null }).catch((e: Error) => setError(e.message));
  return (
    <div class="msg assistant" data-status={s.status ?? "streaming"}>
      {s.tools.map((t) => (
        <div class="toolcall" key={t.id}>
          <div class="row"><Badge value="tool" /> <strong>{t.name}</strong>{t.approval && <Badge value={`risk-${t.approval.risk}`} />}</div>
          <Json value={t.args} />
          {t.approval && !t.approval.answered && t.result === undefined && !t.error && (
            <div class="buttons" role="group" aria-label={`Approve ${t.name}?`}>
              <button class="primary" onClick={() => answer(t, true)}>Allow</button>
              <button onClick={() => answer(t, true, true)}>Allow for this session</button>
              <button class="danger" onClick={() => answer(t, false)}>Deny</button>
            </div>
          )}
          {t.approval?.answered && <p class="muted">{t.approval.answered}</p>}
          {t.result !== undefined && <details><summary>Result</summary><Json value={t.result} /></details>}
          {t.error && <p class="error">{t.error}</p>}
        </div>
      ))}
      <div class="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(s.text) }} />
      {!s.status && <span class="muted typing">…</span>}
      {s.error && <p class="error">{s.error}</p>}
      {s.usage && (
        <p class="usage muted" data-testid="usage">
          {s.usage.inputTokens} in · {s.usage.outputTokens} out tokens{s.cost != null ? ` · $${s.cost.toFixed(4)}` : ""}{s.status && s.status !== "completed" ? ` · ${s.status}` : ""}
        </p>
      )}
      <ErrorLine text={error} />
    </div>
  );
}
