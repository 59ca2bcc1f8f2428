// One WebSocket to the gateway, speaking the same protocol as every client: hello with the
// token, requests matched to replies by id, events fanned out to listeners, reconnect with
// backoff. Pages never touch the socket.
import type { ClientMessage, ServerMessage } from "./protocol";
import { PROTOCOL_VERSION } from "./protocol";

export type ConnState = "connecting" | "online" | "offline" | "unauthorized";

/** Families the dashboard shows beyond what the gateway delivers unasked. */
export const TOPICS = ["workflow.status", "schedule.run", "schedule.disabled"];

type Pending = { resolve: (m: ServerMessage) => void; reject: (e: RequestError) => void };
type Listener = (m: ServerMessage) => void;
// A request without its id: the connection numbers it.
export type Request = ClientMessage extends infer M ? (M extends { id: string } ? Omit<M, "id"> : never) : never;

export class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export class Connection {
  state: ConnState = "connecting";
  /** Increases on every successful hello, so pages reload what they show after a reconnect. */
  generation = 0;
  serverVersion = "";
  /** False when the gateway answered `subscribe` with an error: it then delivers everything. */
  subscribed = false;
  lastError = "";
  private ws: WebSocket | null = null;
  private nextId = 1;
  private pending = new Map<string, Pending>();
  private listeners = new Set<Listener>();
  private stateListeners = new Set<() => void>();
  private attempt = 0;
  private timer: number | undefined;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  start(): void {
    this.closed = false;
    this.open();
  }

  stop(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }

  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener: () => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Sends one request; resolves with its reply, rejects with the error reply. */
  request<T extends ServerMessage = ServerMessage>(message: Request): Promise<T> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.state !== "online") {
      return Promise.reject(new RequestError("OFFLINE", "the gateway is not connected"));
    }
    return this.send<T>(ws, message);
  }

  private send<T extends ServerMessage>(ws: WebSocket, message: Request | ClientMessage): Promise<T> {
    const id = `d${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (m: ServerMessage) => void, reject });
      ws.send(JSON.stringify({ ...message, id }));
    });
  }

  private setState(state: ConnState): void {
    this.state = state;
    for (const l of this.stateListeners) l();
  }

  private open(): void {
    this.setState(this.state === "offline" ? "offline" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.send(ws, { type: "hello", protocol: PROTOCOL_VERSION, token: this.token, client: { name: "hearth-dashboard", version: "1" } })
        .then(async (reply) => {
          if (reply.type !== "hello.ok") throw new RequestError("UNEXPECTED", reply.type);
          this.serverVersion = reply.server.version;
          this.attempt = 0;
          try {
            await this.send(ws, { type: "subscribe", topics: TOPICS } as unknown as Request);
            this.subscribed = true;
          } catch {
            // A gateway from before subscriptions answers with an error: it sends every event.
            this.subscribed = false;
          }
          this.generation++;
          this.setState("online");
        })
        .catch((e: RequestError) => {
          this.lastError = e.message;
          if (e.code === "UNAUTHORIZED") this.setState("unauthorized");
        });
    };
    ws.onmessage = (frame) => this.receive(String(frame.data));
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const p of this.pending.values()) p.reject(new RequestError("OFFLINE", "the connection closed"));
      this.pending.clear();
      if (ev.code === 4401 || this.state === "unauthorized") {
        this.setState("unauthorized");
        return;
      }
      this.setState("offline");
      if (!this.closed) this.retry();
    };
  }

  private retry(): void {
    // 0.5 s doubling to 10 s, with jitter so many tabs do not reconnect in step.
    const base = Math.min(10_000, 500 * 2 ** this.attempt++);
    this.timer = window.setTimeout(() => this.open(), base / 2 + Math.random() * (base / 2));
  }

  /** Try now instead of waiting out the backoff (the "Reconnect" button). */
  reconnectNow(): void {
    clearTimeout(this.timer);
    this.attempt = 0;
    if (!this.ws) this.open();
  }

  private receive(raw: string): void {
    let message: ServerMessage & { id?: string | null };
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    const id = message.id;
    if (id && this.pending.has(id)) {
      const p = this.pending.get(id)!;
      this.pending.delete(id);
      if (message.type === "error") p.reject(new RequestError(message.code, message.message, message.details));
      else p.resolve(message);
      return;
    }
    for (const l of this.listeners) l(message);
  }
}

export function gatewayUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}
