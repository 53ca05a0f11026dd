"""Reminders: what is due, derived from the records by one periodic sweep and told to people once.

Multi-day ETA tasks are not trusted (Redis redelivers them past the visibility timeout, beat can
double-fire around a clock change, a worker can die holding them). Instead:

* a **rule** (``@reminder_rule`` in an app's ``reminders.py``) reads the records with a fixed
  number of set-based queries and returns the next due time of every (item, kind) it watches;
* the **sweep** (one beat task, every few minutes) turns those whose time has come into
  :class:`~lims.models.Reminder` rows, unique by (item, kind, due time); a reminder whose key is no
  longer due resolves itself; one left undone past the grace period is escalated to the lab
  manager, once;
* each new reminder gets an outbox row per recipient and channel, which
  :func:`lims.notifications.outbox_deliver` sends and marks sent in one transaction.

How to add a rule, and the delivery trade-offs, are in docs/reminders.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from lims.audit import require_reason, save_audited, system_user
from lims.db import serialize_on
from lims.errors import DomainError
from lims.models import (
    REMINDER_TRANSITIONS,
    Notification,
    NotificationChannel,
    NotificationPreference,
    Reminder,
    ReminderStatus,
)
from lims.roles import LAB_MANAGER, ROLES, require_permission

logger = logging.getLogger(__name__)

ACKNOWLEDGE_PERMISSION = "lims.acknowledge_reminder"
LIVE = (ReminderStatus.OPEN, ReminderStatus.ACKNOWLEDGED)
MAX_SNOOZE_MINUTES = 24 * 60
SNOOZE_CHOICES_MINUTES = (30, 60, 120, 240, 480)

# (content type id, object id, kind, due time): the unique key of a reminder.
Key = tuple[int, int, str, dt.datetime]


# --- Time: elapsed hours for intervals, calendar days in the site's zone for day counts ------------


def after_hours(anchor: dt.datetime, hours: Decimal | float | int) -> dt.datetime:
    """Elapsed time: cells do not observe daylight saving, so 84 h is 84 h across a clock change."""
    return anchor + dt.timedelta(seconds=int(Decimal(str(hours)) * 3600))


def after_local_days(anchor: dt.datetime, days: int) -> dt.datetime:
    """The same wall-clock time ``days`` calendar days later in the site's zone (culture day N)."""
    zone = timezone.get_default_timezone()
    wall = anchor.astimezone(zone).replace(tzinfo=None, fold=0) + dt.timedelta(days=days)
    return wall.replace(tzinfo=zone).astimezone(dt.UTC)


def local_midnight(day: dt.date) -> dt.datetime:
    """The start of ``day`` in the site's zone."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=timezone.get_default_timezone()).astimezone(dt.UTC)


def end_of_local_day(moment: dt.datetime) -> dt.datetime:
    return local_midnight(timezone.localtime(moment).date() + dt.timedelta(days=1))


def grace_period() -> dt.timedelta:
    return dt.timedelta(hours=settings.STROMA_REMINDER_GRACE_HOURS)


# --- The rule registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DueItem:
    """One (item, kind) and the time it is (or will be) due, as a rule reads it from the records."""

    kind: str
    model: type[models.Model]
    object_id: int
    due_at: dt.datetime
    item_code: str
    title: str
    subject_code: str = ""


@dataclass
class SweepContext:
    """What one evaluation of the rules shares: the moment, and query results several rules read.

    ``horizon``: a rule may leave out an item due after this moment unless a reminder for that item
    is live (open or acknowledged). None asks for every item. The sweep needs only what is due now
    and what its live reminders say; the home page needs the rest of the day.
    """

    now: dt.datetime
    warned: set[str] = field(default_factory=set)
    horizon: dt.datetime | None = None
    _shared: dict[str, Any] = field(default_factory=dict)

    def shared(self, name: str, load: Callable[[], Any]) -> Any:
        """Load once per evaluation: the feed, observation and passage rules read one flask query."""
        if name not in self._shared:
            self._shared[name] = load()
        return self._shared[name]

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Log a problem with the records once per sweep, not once per flask."""
        if key not in self.warned:
            self.warned.add(key)
            logger.warning(message, *args)


Finder = Callable[[SweepContext], Iterable[DueItem]]


@dataclass(frozen=True)
class ReminderRule:
    kind: str
    label: str
    audience: str
    escalates: bool
    find: Finder
    link: Callable[[str], str | None] | None = None


_RULES: dict[str, ReminderRule] = {}
_discovered = False


def reminder_rule(
    kind: str,
    *,
    label: str,
    audience: str,
    escalates: bool = True,
    link: Callable[[str], str | None] | None = None,
) -> Callable[[Finder], Finder]:
    """Register a rule: ``find(ctx)`` yields the next due time of every (item, kind) it watches.

    It must read with a fixed number of queries however many items there are, and may yield items
    not yet due (the sweep keeps those due by ``ctx.now``; the home page shows the rest of the day).
    """
    if audience not in ROLES:
        raise ImproperlyConfigured(f"Reminder rule {kind}: audience {audience!r} is not a role in lims.roles")

    def register(find: Finder) -> Finder:
        _RULES[kind] = ReminderRule(
            kind=kind, label=label, audience=audience, escalates=escalates, find=find, link=link
        )
        return find

    return register


def rules() -> dict[str, ReminderRule]:
    """Every registered rule; each installed app's ``reminders`` module is imported the first time."""
    global _discovered
    if not _discovered:
        autodiscover_modules("reminders")
        _discovered = True
    return dict(_RULES)


def safe_reverse(name: str, *args: object) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


_FIXED: dict[tuple[str, BaseDatabaseWrapper], tuple[Any, str, Any, Any]] = {}


def fixed_rows(name: str, build: Callable[[], QuerySet[Any]]) -> list[tuple[Any, ...]]:
    """The rows of a ``values_list`` query whose SQL never changes, compiled once per connection.

    The sweep runs every five minutes, and Django spends far longer compiling a query than the
    database spends answering it (10 ms against 0.7 ms for the flask query), so a rule's fixed
    query is compiled once. It is still sent, counted and logged like any other, every sweep.
    ``name`` must be unique per query; ``build`` is called only the first time.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    entry = _FIXED.get((name, conn))
    if entry is None:
        compiler = build().query.get_compiler(using=DEFAULT_DB_ALIAS)
        sql, params = compiler.as_sql()
        converters = compiler.get_converters([column[0] for column in compiler.select[: compiler.col_count]])
        entry = _FIXED[(name, conn)] = (compiler, sql, params, converters)
    compiler, sql, params, converters = entry
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not converters:
        return [tuple(row) for row in rows]
    return [tuple(row) for row in compiler.apply_converters(rows, converters)]


def reminder_link(kind: str, item_code: str) -> str | None:
    rule = rules().get(kind)
    return rule.link(item_code) if rule is not None and rule.link is not None else None


def due_items(
    *,
    now: dt.datetime,
    roles: Iterable[str] | None = None,
    warned: set[str] | None = None,
    horizon: dt.datetime | None = None,
) -> tuple[list[DueItem], set[str]]:
    """Every rule's next due items (due or not yet), and the kinds whose rule failed this time.

    With a ``horizon``, items due after it may be left out unless they have a live reminder
    (see :class:`SweepContext`). A rule that fails in Python is logged and left out, and its open
    reminders are left alone until it works again; a database error fails the whole sweep, which
    the next one repeats.
    """
    ctx = SweepContext(now=now, warned=warned if warned is not None else set(), horizon=horizon)
    _CONTENT_TYPE_IDS.clear()
    wanted = set(roles) if roles is not None else None
    items: list[DueItem] = []
    failed: set[str] = set()
    with transaction.atomic():
        _without_jit()
        for rule in rules().values():
            if wanted is not None and rule.audience not in wanted:
                continue
            try:
                items.extend(item for item in rule.find(ctx) if item.kind == rule.kind)
            except DatabaseError:
                raise
            except Exception:
                logger.exception("Reminder rule %s failed; its reminders stay as they are until it works", rule.kind)
                failed.add(rule.kind)
    return items, failed


def _without_jit() -> None:
    """PostgreSQL's JIT spends longer compiling the rules' reads than they take to run (1 to 2 s more
    for a 1 s read at 100,000 flasks). Off for this transaction only."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


# --- The sweep -----------------------------------------------------------------------------------


@dataclass
class SweepResult:
    created: list[int] = field(default_factory=list)
    resolved: int = 0
    escalated: int = 0
    queued: int = 0
    mails: int = 0


# Content type ids of the models the rules watch, looked up once per evaluation instead of once per
# item (a sweep builds hundreds of thousands of keys). Emptied when the rules are evaluated again,
# because a test database flushed and migrated again may number its content types anew.
_CONTENT_TYPE_IDS: dict[type[models.Model], int] = {}


def _ct_id(model: type[models.Model]) -> int:
    found = _CONTENT_TYPE_IDS.get(model)
    if found is None:
        found = _CONTENT_TYPE_IDS[model] = ContentType.objects.get_for_model(model).pk
    return found


def _item_key(item: DueItem) -> Key:
    return (_ct_id(item.model), item.object_id, item.kind, item.due_at)


def _reminder_key(reminder: Reminder) -> Key:
    return (reminder.content_type_id, reminder.object_id, reminder.kind, reminder.due_at)


def _existing_keys(candidates: list[DueItem]) -> set[Key]:
    """Keys that already have a reminder, resolved ones included: a key is reminded of once."""
    groups: dict[tuple[int, str], set[int]] = {}
    for item in candidates:
        groups.setdefault((_ct_id(item.model), item.kind), set()).add(item.object_id)
    if not groups:
        return set()
    where = Q()
    for (ct, kind), ids in groups.items():
        where |= Q(content_type_id=ct, kind=kind, object_id__in=sorted(ids))
    rows = Reminder.objects.filter(where).values_list("content_type_id", "object_id", "kind", "due_at")
    return set(rows)


def _resolve(
    live: list[Reminder],
    due: dict[Key, DueItem],
    current: dict[tuple[int, int, str], DueItem],
    *,
    now: dt.datetime,
    stamp: dt.datetime,
) -> list[Reminder]:
    known = rules()
    resolved = []
    for reminder in live:
        if reminder.kind not in known or reminder.due_at > now:
            continue  # an unknown kind, or a sweep with an older clock: not this sweep's to judge
        if _reminder_key(reminder) in due:
            continue
        later = current.get((reminder.content_type_id, reminder.object_id, reminder.kind))
        if later is not None:
            words = f"done: next due {timezone.localtime(later.due_at):%Y-%m-%d %H:%M %Z}"
        else:
            words = "no longer due: the item left culture or the condition cleared"
        reminder.status, reminder.resolved_at, reminder.resolution = ReminderStatus.RESOLVED, stamp, words[:200]
        reminder._change_reason = f"sweep: resolved, {words}"  # type: ignore[attr-defined]
        resolved.append(reminder)
    return resolved


def _escalations(
    live: list[Reminder], resolved: list[Reminder], *, now: dt.datetime, stamp: dt.datetime
) -> list[Reminder]:
    """Open reminders nobody acted on for the grace period after they fell due (or were last snoozed)."""
    known, gone, grace = rules(), {r.pk for r in resolved}, grace_period()
    found = []
    for reminder in live:
        rule = known.get(reminder.kind)
        if rule is None or not rule.escalates or reminder.pk in gone:
            continue
        if reminder.status != ReminderStatus.OPEN or reminder.escalated_at is not None:
            continue
        # Measured from when people could first see it, so a backlog after an outage is not escalated at once.
        since = max(reminder.due_at, reminder.created_at, reminder.snoozed_until or reminder.due_at)
        if since + grace <= now:
            reminder.escalated_at = stamp
            reminder._change_reason = (  # type: ignore[attr-defined]
                f"sweep: escalated to {LAB_MANAGER}, not done {settings.STROMA_REMINDER_GRACE_HOURS} h after due"
            )
            found.append(reminder)
    return found


def _new_reminders(candidates: list[DueItem], *, stamp: dt.datetime) -> list[Reminder]:
    known = rules()
    created = []
    for item in sorted(candidates, key=lambda i: (i.due_at, i.kind, i.object_id)):
        reminder = Reminder(
            kind=item.kind,
            content_type_id=_ct_id(item.model),
            object_id=item.object_id,
            item_code=item.item_code[:40],
            subject_code=item.subject_code[:32],
            title=item.title[:200],
            audience_role=known[item.kind].audience,
            due_at=item.due_at,
            created_at=stamp,
        )
        reminder._change_reason = f"sweep: due, {item.title}"[:200]  # type: ignore[attr-defined]
        created.append(reminder)
    return created


def _queue_notifications(
    created: list[Reminder], escalated: list[Reminder], *, stamp: dt.datetime
) -> list[Notification]:
    from lims.notifications import reminder_recipients

    roles = {r.audience_role for r in created} | ({LAB_MANAGER} if escalated else set())
    if not roles:
        return []
    recipients = reminder_recipients(roles)
    rows = []
    for reminder in created:
        for person in recipients.get(reminder.audience_role, []):
            channel = NotificationChannel.DIGEST if person.daily_digest else NotificationChannel.EMAIL
            rows.append(Notification(reminder=reminder, recipient_id=person.user_id, channel=channel, created_at=stamp))
    for reminder in escalated:
        for person in recipients.get(LAB_MANAGER, []):
            rows.append(
                Notification(
                    reminder=reminder,
                    recipient_id=person.user_id,
                    channel=NotificationChannel.ESCALATION,
                    created_at=stamp,
                )
            )
    return rows


_REMINDER_FIELDS = [f.attname for f in Reminder._meta.concrete_fields]


def _live_reminders() -> list[Reminder]:
    rows = fixed_rows(
        "lims.live_reminders",
        lambda: Reminder.objects.filter(status__in=LIVE).values_list(*_REMINDER_FIELDS).order_by("pk"),
    )
    return [Reminder.from_db(DEFAULT_DB_ALIAS, _REMINDER_FIELDS, row) for row in rows]


@dataclass
class _Plan:
    """What one sweep would write: reminders to resolve, to escalate and to create."""

    resolved: list[Reminder]
    escalated: list[Reminder]
    fresh: list[Reminder]

    @property
    def empty(self) -> bool:
        return not (self.resolved or self.escalated or self.fresh)


def _plan(items: list[DueItem], failed: set[str], *, now: dt.datetime, stamp: dt.datetime) -> _Plan:
    """What to write, from the rules' items and the reminders as they are now (read here, each time)."""
    due = {_item_key(i): i for i in items if i.due_at <= now and i.kind not in failed}
    # The same item and kind due again at another time means the step was recorded (a feed, a look).
    current = {_item_key(i)[:3]: i for i in items}
    live = _live_reminders()
    live_keys = {_reminder_key(r) for r in live}
    resolved = _resolve([r for r in live if r.kind not in failed], due, current, now=now, stamp=stamp)  # type: ignore[arg-type]
    escalated = _escalations(live, resolved, now=now, stamp=stamp)
    candidates = [item for key, item in due.items() if key not in live_keys]
    existing = _existing_keys(candidates) if candidates else set()
    fresh = _new_reminders([i for i in candidates if _item_key(i) not in existing], stamp=stamp)
    return _Plan(resolved=resolved, escalated=escalated, fresh=fresh)


def _record(plan: _Plan, *, stamp: dt.datetime, result: SweepResult) -> None:
    actor = system_user()
    changed = plan.resolved + plan.escalated
    if changed:
        bulk_update_with_history(
            changed,
            Reminder,
            ["status", "resolved_at", "resolution", "escalated_at"],
            default_user=actor,
            default_date=stamp,
        )
    created = (
        bulk_create_with_history(plan.fresh, Reminder, default_user=actor, default_date=stamp) if plan.fresh else []
    )
    outbox = _queue_notifications(created, plan.escalated, stamp=stamp)
    if outbox:
        bulk_create_with_history(
            outbox,
            Notification,
            default_user=actor,
            default_change_reason="sweep: queued for e-mail",
            default_date=stamp,
        )
    result.created = [r.pk for r in created]
    result.resolved, result.escalated, result.queued = len(plan.resolved), len(plan.escalated), len(outbox)


def reminders_sweep(*, now: dt.datetime | None = None, deliver: bool = True) -> SweepResult:
    """Derive what is due from the records, record each reminder once, resolve, escalate, then send.

    The records are read without a lock. The reminders are then read, and what changes written,
    under a transaction-scoped lock named for the sweep, so two sweeps at once (two beat messages,
    a redelivery, a second worker) write one after the other and the second finds the work done:
    nothing is created, resolved or escalated twice. A sweep killed half-way rolls back; the next
    one does it all again.
    """
    # ``now`` is the moment judged; what is written (created, resolved, history) carries the real time.
    stamp = timezone.now()
    now = now or stamp
    result = SweepResult()
    items, failed = due_items(now=now, horizon=now)
    with transaction.atomic():
        serialize_on("reminders-sweep")
        _without_jit()  # bulk_update_with_history's CASE has a branch per reminder
        plan = _plan(items, failed, now=now, stamp=stamp)
        if not plan.empty:
            _record(plan, stamp=stamp, result=result)
    if deliver:
        from lims.notifications import outbox_deliver

        result.mails = outbox_deliver(now=now)
    return result


# --- Acknowledge, snooze, preferences --------------------------------------------------------------


def _roles_of(user: Any) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def _require_audience(reminder: Reminder, user: Any, doing: str) -> None:
    require_permission(user, ACKNOWLEDGE_PERMISSION, action=f"{doing} reminders")
    roles = _roles_of(user)
    if reminder.audience_role in roles or (reminder.escalated_at is not None and LAB_MANAGER in roles):
        return
    raise DomainError(
        f"“{reminder.title}” is for the {reminder.audience_role} role; only someone holding that role can {doing} it.",
        code="forbidden",
    )


def _when(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment):%H:%M on %Y-%m-%d}"


def reminder_acknowledge(*, reminder: Reminder, acting_user: Any) -> Reminder:
    """Someone of the reminder's role takes it on: it stops counting as due and is not escalated."""
    with transaction.atomic():
        locked = Reminder.objects.select_for_update().get(pk=reminder.pk)
        _require_audience(locked, acting_user, "acknowledge")
        if locked.status == ReminderStatus.ACKNOWLEDGED and locked.acknowledged_by_id == acting_user.pk:
            return locked  # a double tap records once
        if ReminderStatus.ACKNOWLEDGED not in REMINDER_TRANSITIONS[locked.status]:
            if locked.status == ReminderStatus.RESOLVED:
                raise DomainError(f"“{locked.title}” is already done ({locked.resolution}); nothing to acknowledge.")
            who = locked.acknowledged_by.printed_name if locked.acknowledged_by else "someone"
            when = _when(locked.acknowledged_at or locked.due_at)
            raise DomainError(f"“{locked.title}” was already acknowledged by {who} at {when}.")
        locked.status, locked.acknowledged_at, locked.acknowledged_by = (
            ReminderStatus.ACKNOWLEDGED,
            timezone.now(),
            acting_user,
        )
        save_audited(
            locked,
            acting_user=acting_user,
            reason="acknowledged",
            update_fields=["status", "acknowledged_at", "acknowledged_by"],
        )
    return locked


def reminder_snooze(*, reminder: Reminder, acting_user: Any, minutes: int, reason: str) -> Reminder:
    """Hide an open reminder for a while, with the reason kept; escalation waits for the snooze to end."""
    require_permission(acting_user, ACKNOWLEDGE_PERMISSION, action="snooze reminders")
    reason = require_reason(reason, what="snoozing a reminder")
    if not 1 <= int(minutes) <= MAX_SNOOZE_MINUTES:
        raise DomainError("A reminder can be snoozed for between 1 minute and 24 hours.")
    with transaction.atomic():
        locked = Reminder.objects.select_for_update().get(pk=reminder.pk)
        _require_audience(locked, acting_user, "snooze")
        if locked.status != ReminderStatus.OPEN:
            raise DomainError(
                f"“{locked.title}” is {locked.get_status_display().lower()}; only an open reminder can be snoozed."
            )
        until = timezone.now() + dt.timedelta(minutes=int(minutes))
        locked.snoozed_until, locked.snooze_reason, locked.snoozed_by = until, reason, acting_user
        save_audited(
            locked,
            acting_user=acting_user,
            reason=f"snoozed until {_when(until)}: {reason}",
            update_fields=["snoozed_until", "snooze_reason", "snoozed_by"],
        )
    return locked


def notification_preference_set(*, acting_user: Any, daily_digest: bool) -> NotificationPreference:
    """A person chooses reminder e-mail as it falls due, or one daily digest; only for themselves."""
    if not getattr(acting_user, "is_authenticated", False) or not acting_user.is_active:
        raise DomainError("Log in to change how you are told about reminders.", code="forbidden")
    with transaction.atomic():
        preference = NotificationPreference.objects.select_for_update().filter(user=acting_user).first()
        if preference is None:
            preference = NotificationPreference(user=acting_user)
        elif preference.daily_digest == daily_digest:
            return preference
        preference.daily_digest = bool(daily_digest)
        words = "one daily digest" if daily_digest else "each reminder as it falls due"
        save_audited(preference, acting_user=acting_user, reason=f"reminder e-mail: {words}")
    return preference


def wants_daily_digest(user: Any) -> bool:
    return NotificationPreference.objects.filter(user_id=user.pk, daily_digest=True).exists()


# --- Reading: inbox, dashboard, badge ----------------------------------------------------------------


def visible_to(user: Any) -> Q:
    """A person's inbox: their roles' reminders, and for the lab manager every escalated one."""
    roles = Group.objects.filter(user=user.pk).values("name")
    manager = Exists(Group.objects.filter(user=user.pk, name=LAB_MANAGER))
    return Q(audience_role__in=roles) | (Q(escalated_at__isnull=False) & Q(manager))


def inbox_for(user: Any) -> QuerySet[Reminder]:
    return (
        Reminder.objects.filter(visible_to(user), status__in=LIVE)
        .select_related("acknowledged_by", "snoozed_by")
        .order_by("due_at", "id")
    )


# The header badge counts up to this many and then shows "99+": past that the number tells the person
# nothing more, and a count that stops early costs the same on every page however many are open.
BADGE_MAX = 99


def badge_count(user: Any, *, now: dt.datetime | None = None) -> int:
    """Open reminders due now in the person's inbox, not snoozed, counted up to ``BADGE_MAX + 1``: one query."""
    if not getattr(user, "is_authenticated", False):
        return 0
    now = now or timezone.now()
    due = Reminder.objects.filter(visible_to(user), status=ReminderStatus.OPEN, due_at__lte=now).exclude(
        snoozed_until__gt=now
    )
    return due.order_by()[: BADGE_MAX + 1].count()


def badge_text(count: int) -> str:
    """What the badge says: nothing, "3 due", or "99+ due"."""
    if count <= 0:
        return ""
    return f"{BADGE_MAX}+ due" if count > BADGE_MAX else f"{count} due"


@dataclass(frozen=True)
class Row:
    """One line of the dashboard or inbox: a reminder, or an item due later today (reminder is None)."""

    title: str
    kind_label: str
    due_at: dt.datetime
    item_code: str
    link: str | None
    reminder: Reminder | None = None
    overdue: bool = False


@dataclass
class Dashboard:
    overdue: list[Row] = field(default_factory=list)
    due_now: list[Row] = field(default_factory=list)
    later_today: list[Row] = field(default_factory=list)
    acknowledged: list[Row] = field(default_factory=list)
    snoozed: list[Row] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.overdue or self.due_now or self.later_today or self.acknowledged)


def _row(reminder: Reminder, *, now: dt.datetime) -> Row:
    known = rules().get(reminder.kind)
    return Row(
        title=reminder.title,
        kind_label=known.label if known else reminder.kind,
        due_at=reminder.due_at,
        item_code=reminder.item_code,
        link=reminder_link(reminder.kind, reminder.item_code),
        reminder=reminder,
        overdue=reminder.due_at + grace_period() <= now or reminder.escalated_at is not None,
    )


def dashboard_for(user: Any, *, now: dt.datetime | None = None) -> Dashboard:
    """Overdue (past the grace period), due now, due later today, and what colleagues have taken on.

    The rules of the person's roles are read live, so a step recorded a minute ago no longer shows
    as due even before the next sweep resolves its reminder.
    """
    now = now or timezone.now()
    board = Dashboard()
    roles = _roles_of(user)
    known = rules()
    until = end_of_local_day(now)
    items, failed = due_items(now=now, roles=roles, horizon=until) if roles else ([], set())
    judged = {kind for kind, rule in known.items() if rule.audience in roles} - failed
    current = {_item_key(i) for i in items}
    for reminder in inbox_for(user):
        if reminder.kind in judged and _reminder_key(reminder) not in current:
            continue  # done since the last sweep; the next one resolves it
        row = _row(reminder, now=now)
        if reminder.status == ReminderStatus.ACKNOWLEDGED:
            board.acknowledged.append(row)
        elif reminder.snoozed_until is not None and reminder.snoozed_until > now:
            board.snoozed.append(row)
        elif row.overdue:
            board.overdue.append(row)
        else:
            board.due_now.append(row)
    for item in sorted((i for i in items if now < i.due_at <= until), key=lambda i: i.due_at):
        rule = known[item.kind]
        link = rule.link(item.item_code) if rule.link else None
        board.later_today.append(Row(item.title, rule.label, item.due_at, item.item_code, link))
    return board
