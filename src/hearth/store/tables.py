"""The relational schema, one SQLAlchemy Core table per concept.

Core tables (not ORM classes) keep the SQL visible: claims and leases in later features are
atomic conditional UPDATEs, and that is easiest to review when the statement is written out.
Timestamps are timezone-aware UTC everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on both backends (SQLite would otherwise hand back naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: One row per running gateway process. `seen_at` is renewed while the node lives, so other
#: nodes (and `gateway.status`) can tell live peers from dead ones.
gateway_nodes = sa.Table(
    "gateway_nodes",
    metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("url", sa.String(255), nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
)


#: Every workflow definition an execution ever started from, by content hash. Executions pin
#: (workflow_id, content_hash), so editing the YAML file never changes a running execution.
workflows = sa.Table(
    "workflows",
    metadata,
    sa.Column("workflow_id", sa.String(128), primary_key=True),
    sa.Column("content_hash", sa.String(64), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

#: One row per execution. `owner_node` + `lease_expires_at` say which gateway process drives a
#: running execution; paused and finished ones have no owner.
workflow_executions = sa.Table(
    "workflow_executions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("workflow_id", sa.String(128), nullable=False, index=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("triggered_by", sa.String(16), nullable=False),
    sa.Column("input", sa.JSON, nullable=False),
    sa.Column("current_step_id", sa.String(64)),
    sa.Column("visit_seq", sa.Integer, nullable=False, default=0),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("step_count", sa.Integer, nullable=False, default=0),
    sa.Column("waiting_for", sa.String(16)),
    sa.Column("wake_at", UtcDateTime(), index=True),
    sa.Column("error", sa.Text),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("scheduled_for", UtcDateTime()),
    sa.Column("owner_node", sa.String(64)),
    sa.Column("lease_expires_at", UtcDateTime()),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("completed_at", UtcDateTime()),
    # The earliest time the current step may run (again): a retry's backoff or a crash's, kept
    # here so that a restart waits for it like for a wait step's `wake_at`.
    sa.Column("next_attempt_at", UtcDateTime()),
    # Consecutive crashes of the runner at step run `crash_seq` (see `workflows.crash_limit`).
    sa.Column("crash_count", sa.Integer, nullable=False, default=0, server_default=sa.text("0")),
    sa.Column("crash_seq", sa.Integer),
    sa.ForeignKeyConstraint(
        ["workflow_id", "content_hash"], ["workflows.workflow_id", "workflows.content_hash"]
    ),
)

#: Append-only journal: one row per finished step attempt. A step that started but never
#: committed its row runs again after a crash (at-least-once); `seq` is the step run number.
step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("workflow_executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("output", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=False),
    # Where the execution goes after this row, while it keeps running (null when the row ends
    # or pauses it). The execution row's own position is only brought up to date when its
    # status changes, so a step costs one row.
    sa.Column("next_step_id", sa.String(64)),
    sa.Column("next_visit_seq", sa.Integer),
    sa.Column("next_attempt", sa.Integer),
    # Clustered on (execution_id, seq): one b-tree to write per step instead of two.
    sqlite_with_rowid=False,
)

#: A tool step run's start, committed before the tool runs. A start without a `step_runs` row
#: at the same `seq` is a step the gateway stopped in: it may or may not have had its effect.
step_starts = sa.Table(
    "step_starts",
    metadata,
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("workflow_executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sqlite_with_rowid=False,
)

#: Things waiting for a person: workflow approval gates and (later) tool calls. The first
#: answer wins through a conditional UPDATE on `status = 'pending'`.
approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("execution_id", sa.String(36), index=True),
    sa.Column("step_id", sa.String(64)),
    sa.Column("visit_seq", sa.Integer),
    sa.Column("session_id", sa.String(64)),
    sa.Column("tool_call_id", sa.String(128)),
    sa.Column("tool_name", sa.String(128)),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("risk", sa.String(16)),
    sa.Column("requested_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime()),
    sa.Column("resolved_at", UtcDateTime()),
    sa.Column("resolved_by", sa.String(128)),
    sa.Column("comment", sa.Text),
    # Audit of the answer (migration 0010): client name, channel, user, peer address.
    sa.Column("answered_client", sa.String(128)),
    sa.Column("answered_channel", sa.String(32)),
    sa.Column("answered_user", sa.String(128)),
    sa.Column("answered_address", sa.String(64)),
    sa.UniqueConstraint("execution_id", "visit_seq", name="uq_approvals_execution_visit"),
)


#: A schedule fires its target (a workflow, or the heartbeat) on a trigger. `next_run` is the
#: only clock the scheduler needs: ticks are claimed by a conditional UPDATE on it.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("target", sa.String(16), nullable=False),
    sa.Column("workflow_id", sa.String(128)),
    sa.Column("input", sa.JSON),
    sa.Column("cron_expression", sa.String(200)),
    sa.Column("every", sa.String(50)),
    sa.Column("every_s", sa.Float),
    sa.Column("at", UtcDateTime()),
    sa.Column("anchor_at", UtcDateTime(), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("active_hours", sa.JSON),
    sa.Column("max_runs", sa.Integer),
    sa.Column("run_count", sa.Integer, nullable=False, default=0),
    sa.Column("overlap", sa.String(8), nullable=False),
    sa.Column("misfire", sa.String(16), nullable=False),
    sa.Column("misfire_grace_s", sa.Float, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("state_reason", sa.Text),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("next_run", UtcDateTime(), index=True),
    sa.Column("last_execution_id", sa.String(36)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    #: Bumped by every write, so a read-check-write (`schedule.update`) can tell whether the
    #: row changed under it (a tick claimed meanwhile) and retry instead of undoing it.
    sa.Column("version", sa.Integer, nullable=False, default=0, server_default=sa.text("0")),
)

#: Every tick's outcome, including skipped and missed ones. The unique (schedule, time) pair
#: makes a double fire impossible even if two nodes raced past the claim.
schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "schedule_id",
        sa.String(36),
        sa.ForeignKey("schedules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("scheduled_for", UtcDateTime(), nullable=False),
    sa.Column("fired_at", UtcDateTime(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("execution_id", sa.String(36), index=True),
    sa.Column("missed_count", sa.Integer),
    sa.UniqueConstraint("schedule_id", "scheduled_for", name="uq_schedule_runs_tick"),
)


#: A conversation. `active_request_id` is the one stream allowed at a time (claimed with a
#: conditional UPDATE, so it holds across gateway processes too).
chat_sessions = sa.Table(
    "chat_sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("session_key", sa.String(64), nullable=False, unique=True),
    sa.Column("title", sa.String(200)),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("agent_id", sa.String(64)),
    sa.Column("approved_tools", sa.JSON, nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False, default=0),
    sa.Column("active_request_id", sa.String(36)),
    sa.Column("active_since", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

#: The full history: one row per pydantic-ai message (request or response), as JSON.
chat_messages = sa.Table(
    "chat_messages",
    metadata,
    sa.Column(
        "session_id",
        sa.String(36),
        sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("message", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

#: Tokens per request and model, for `usage.query`.
chat_usage = sa.Table(
    "chat_usage",
    metadata,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column(
        "session_id",
        sa.String(36),
        sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("total_tokens", sa.Integer, nullable=False),
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)


#: One row per heartbeat run, written when the run starts (`running`) and finished once. The
#: failing streak and `heartbeat.status` read this table, so a restart loses nothing.
heartbeat_runs = sa.Table(
    "heartbeat_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("schedule_id", sa.String(36)),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("reason", sa.Text),
    sa.Column("heartbeat_path", sa.Text, nullable=False),
    sa.Column("model", sa.String(200)),
    sa.Column("open_items", sa.Integer, nullable=False, default=0),
    sa.Column("deferred", sa.Integer, nullable=False, default=0),
    sa.Column("checks", sa.JSON, nullable=False),
    sa.Column("alerted", sa.Boolean, nullable=False, default=False),
    sa.Column("alert_id", sa.String(36)),
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("scheduled_for", UtcDateTime()),
    sa.Column("started_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("finished_at", UtcDateTime()),
)

#: Every alert the heartbeat raised: `sent` ones reached the clients, `suppressed` ones matched
#: an alert sent within the dedupe window. `signature` is the hash of the normalised set of
#: alerting items, which is what "the same alert" means.
heartbeat_alerts = sa.Table(
    "heartbeat_alerts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("signature", sa.String(64), nullable=False, index=True),
    sa.Column("checks", sa.JSON, nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("created_at", UtcDateTime(), nullable=False, index=True),
)


#: One row per Telegram bot (its numeric id, the token's prefix): the `getUpdates` offset that
#: the inbox commits together with each update, and the lease that makes one node the poller.
telegram_bots = sa.Table(
    "telegram_bots",
    metadata,
    sa.Column("bot_id", sa.String(32), primary_key=True),
    sa.Column("update_offset", sa.BigInteger, nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", UtcDateTime()),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

#: Every update received, written with the new offset before it is handled. `status` goes
#: received → streaming (a chat reply is running; `request_id` names it) → done.
telegram_inbox = sa.Table(
    "telegram_inbox",
    metadata,
    sa.Column("bot_id", sa.String(32), primary_key=True),
    sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("request_id", sa.String(64)),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("handled_at", UtcDateTime()),
    sa.Index("ix_telegram_inbox_status", "bot_id", "status"),
)

#: Every message the bot sent, keyed by what caused it (`reply:<request>:<chunk>`,
#: `approval:<id>`, `alert:<id>`, …) per chat, so nothing is sent twice after a restart.
#: `sending` rows were claimed but Telegram's answer was not recorded yet.
telegram_outbox = sa.Table(
    "telegram_outbox",
    metadata,
    sa.Column("bot_id", sa.String(32), primary_key=True),
    sa.Column("chat_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("cause", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(128)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message_id", sa.BigInteger),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("entities", sa.JSON),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_telegram_outbox_kind", "bot_id", "kind", "status"),
)

#: Telegram users allowed to talk to the bot (besides `telegram.allowed_users` in the config,
#: which get a row on first contact), with the chat session their messages go to.
telegram_users = sa.Table(
    "telegram_users",
    metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("session_id", sa.String(64)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

#: Pairing codes handed to unknown users; `hearth telegram pair CODE` allows the user.
telegram_pairings = sa.Table(
    "telegram_pairings",
    metadata,
    sa.Column("code", sa.String(16), primary_key=True),
    sa.Column("user_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("chat_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("used_at", UtcDateTime()),
)

#: Every `notify` a person was sent, so a client that was offline can read it later (and the
#: Telegram channel and the dashboard can deliver it). The integer id orders them and is the
#: cursor a follower compares against. `dedupe_key` is the tool call's idempotency key: a step
#: that runs again after a crash does not store its notification twice. Bounded by the
#: `[notifications]` retention settings.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("source", sa.String(200)),
    sa.Column("execution_id", sa.String(36), index=True),
    sa.Column("step_id", sa.String(64)),
    sa.Column("dedupe_key", sa.String(200), unique=True),
    sqlite_autoincrement=True,
)
