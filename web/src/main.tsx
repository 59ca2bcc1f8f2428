// The dashboard's shell: login (token from the address's fragment or typed in), navigation,
// the connection banner and the page for the current hash route.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Connection, gatewayUrl } from "./connection";
import { Approvals } from "./pages/approvals";
import { Chat } from "./pages/chat";
import { Executions } from "./pages/executions";
import { Heartbeat } from "./pages/heartbeat";
import { Notifications } from "./pages/notifications";
import { Overview } from "./pages/overview";
import { Schedules } from "./pages/schedules";
import { Workflows } from "./pages/workflows";
import type { ServerMessage } from "./protocol";
import { ConnContext, useConnState, useEvents } from "./ui";

const TOKEN_KEY = "hearth.token";

/** `#token=…` (from `hearth dashboard`) goes to sessionStorage and out of the address bar. */
function takeToken(): string | null {
  const match = location.hash.match(/^#token=([^&]*)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

const PAGES = [
  ["", "Overview"],
  ["approvals", "Approvals"],
  ["executions", "Executions"],
  ["workflows", "Workflows"],
  ["schedules", "Schedules"],
  ["heartbeat", "Heartbeat"],
  ["chat", "Chat"],
  ["notifications", "Notifications"],
] as const;

function useRoute(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, "").split("/");
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

function Page({ route }: { route: string[] }) {
  const [name, id] = route;
  switch (name) {
    case "approvals": return <Approvals />;
    case "executions": return <Executions id={id} />;
    case "workflows": return <Workflows />;
    case "schedules": return <Schedules />;
    case "heartbeat": return <Heartbeat />;
    case "chat": return <Chat id={id} />;
    case "notifications": return <Notifications />;
    default: return <Overview />;
  }
}

function Banner({ onLogout }: { onLogout: () => void }) {
  const conn = useConnState();
  if (conn.state === "online") return null;
  if (conn.state === "unauthorized") {
    return (
      <div class="banner error" role="alert">
        The gateway refused the token{conn.lastError ? ` (${conn.lastError})` : ""}. <button onClick={onLogout}>Enter another token</button>
      </div>
    );
  }
  return (
    <div class="banner offline" role="status" data-testid="offline">
      {conn.state === "connecting" ? "Connecting to the gateway…" : "Offline: the gateway does not answer. Retrying…"}{" "}
      {conn.state === "offline" && <button onClick={() => conn.reconnectNow()}>Retry now</button>}
    </div>
  );
}

function PendingBadge() {
  const conn = useConnState();
  const [count, setCount] = useState<number | null>(null);
  const refresh = () => conn.request({ type: "approval.list" }).then((r) => r.type === "approval.list.result" && setCount(r.approvals.length), () => undefined);
  useEffect(() => {
    if (conn.state === "online") refresh();
  }, [conn.generation, conn.state]);
  useEvents((m: ServerMessage) => {
    if (m.type === "approval.resolved" || m.type === "workflow.approval.request" || m.type === "tool.approval.request") refresh();
  });
  return count ? <span class="count" aria-label={`${count} pending`}>{count}</span> : null;
}

function ThemeToggle() {
  const [theme, setTheme] = useState(localStorage.getItem("hearth.theme") ?? "auto");
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("hearth.theme", theme);
  }, [theme]);
  return (
    <label class="theme">
      <span class="sr-only">Colour theme</span>
      <select value={theme} onChange={(e) => setTheme((e.target as HTMLSelectElement).value)}>
        <option value="auto">Auto theme</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}

function Shell({ conn, onLogout }: { conn: Connection; onLogout: () => void }) {
  const route = useRoute();
  const [menu, setMenu] = useState(false);
  useEffect(() => setMenu(false), [route.join("/")]);
  return (
    <ConnContext.Provider value={conn}>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <button class="menu" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>Menu</button>
        <a class="brand" href="#/">Hearth</a>
        <div id="nav" class={menu ? "navbox open" : "navbox"}>
          <nav aria-label="Pages">
            {PAGES.map(([path, label]) => (
              <a key={path} href={`#/${path}`} aria-current={(route[0] ?? "") === path ? "page" : undefined}>
                {label}{path === "approvals" && <PendingBadge />}
              </a>
            ))}
          </nav>
          <div class="tools">
            <ThemeToggle />
            <button class="logout" onClick={onLogout}>Log out</button>
          </div>
        </div>
      </header>
      <Banner onLogout={onLogout} />
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
    </ConnContext.Provider>
  );
}

function Login({ onToken }: { onToken: (t: string) => void }) {
  const [value, setValue] = useState("");
  return (
    <main class="login">
      <form
        class="card form"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim()) onToken(value.trim());
        }}
      >
        <h1>Hearth</h1>
        <p>Run <code>hearth dashboard --open</code> on the gateway's machine, or paste the token from <code>hearth token show</code>.</p>
        <label class="field">
          Gateway token
          <input name="token" type="password" autoComplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} autoFocus />
        </label>
        <button class="primary" type="submit">Log in</button>
      </form>
    </main>
  );
}

function App() {
  const [token, setToken] = useState(takeToken);
  const [conn, setConn] = useState<Connection | null>(null);
  useEffect(() => {
    if (!token) return;
    const c = new Connection(gatewayUrl(), token);
    c.start();
    setConn(c);
    return () => c.stop();
  }, [token]);
  const logout = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setConn(null);
    setToken(null);
  };
  if (!token) {
    return <Login onToken={(t) => { sessionStorage.setItem(TOKEN_KEY, t); setToken(t); }} />;
  }
  return conn ? <Shell conn={conn} onLogout={logout} /> : null;
}

const root = document.getElementById("app")!;
root.textContent = "";
render(<App />, root);
