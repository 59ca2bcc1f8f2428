// Small shared pieces: connection context, data loading that follows reconnects, formatting.
import { createContext, type ComponentChildren } from "preact";
import { useContext, useEffect, useRef, useState } from "preact/hooks";
import { Connection, RequestError, type Request } from "./connection";
import type { ServerMessage } from "./protocol";

export const ConnContext = createContext<Connection>(null as unknown as Connection);

export function useConn(): Connection {
  return useContext(ConnContext);
}

/** Re-renders when the connection's state changes; returns its generation (bumps on reconnect). */
export function useConnState(): Connection {
  const conn = useConn();
  const [, set] = useState(0);
  useEffect(() => conn.onState(() => set((n) => n + 1)), [conn]);
  return conn;
}

/** Calls `handler` for every server event while the component is shown. */
export function useEvents(handler: (m: ServerMessage) => void): void {
  const conn = useConn();
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => conn.onEvent((m) => ref.current(m)), [conn]);
}

let firstLoads = 0;

/** `<html data-loading>` counts first loads still on their way, so tests and the benchmark
 * can tell "rendered with data" from "rendered, waiting" without guessing with sleeps. */
function countFirstLoad(delta: number): void {
  firstLoads += delta;
  document.documentElement.dataset.loading = String(firstLoads);
}

/** Loads with `load` now, after each reconnect, and whenever `deps` change; `reload()` on demand. */
export function useLoad<T>(load: (conn: Connection) => Promise<T>, deps: unknown[] = []) {
  const conn = useConnState();
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string>("");
  const [tick, setTick] = useState(0);
  const waiting = useRef<boolean | null>(null);
  if (waiting.current === null) {
    // During the first render, so the count is up before anything is painted.
    waiting.current = true;
    countFirstLoad(1);
  }
  const settle = () => {
    if (waiting.current) {
      waiting.current = false;
      countFirstLoad(-1);
    }
  };
  useEffect(() => settle, []);
  useEffect(() => {
    if (conn.state !== "online") return;
    let live = true;
    load(conn).then(
      (v) => live && (setData(v), setError(""), settle()),
      (e: RequestError) => live && (setError(e.message), settle()),
    );
    return () => {
      live = false;
    };
  }, [conn.generation, conn.state, tick, ...deps]);
  return { data, error, reload: () => setTick((t) => t + 1), setData };
}

/** Sends a request from a button: tracks busy and error state for the caller to show. */
export function useAction() {
  const conn = useConn();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const run = async <T extends ServerMessage>(message: Request): Promise<T | null> => {
    setBusy(true);
    setError("");
    try {
      return await conn.request<T>(message);
    } catch (e) {
      setError((e as Error).message);
      return null;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, setError };
}

export function when(iso?: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function ago(iso?: string | null): string {
  if (!iso) return "—";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  const fmt = (n: number, unit: string) => `${Math.round(n)} ${unit}${Math.round(n) === 1 ? "" : "s"}`;
  const abs = Math.abs(s);
  const text = abs < 60 ? fmt(abs, "second") : abs < 3600 ? fmt(abs / 60, "minute") : abs < 86400 ? fmt(abs / 3600, "hour") : fmt(abs / 86400, "day");
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

export function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : m ? `${m} min` : `${Math.floor(seconds)} s`;
}

export function Badge({ value }: { value: string }) {
  return <span class={`badge badge-${value}`}>{value}</span>;
}

export function Json({ value }: { value: unknown }) {
  if (value === undefined || value === null) return <span class="muted">—</span>;
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}

export function ErrorLine({ text }: { text: string }) {
  return text ? <p class="error" role="alert">{text}</p> : null;
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="card">
      <header class="card-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted empty">{children}</p>;
}
