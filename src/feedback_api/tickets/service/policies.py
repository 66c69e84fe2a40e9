"""How a tenant's loop is set up: SLA policies (targets per priority, business hours,
warning and escalation) and the ordered rules that open tickets from responses."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from feedback_api.exceptions import Conflict, InvalidRequest, NotFound, PolicyInUse, PolicyKeyTaken
from feedback_api.kit.time import utcnow
from feedback_api.models import SlaPolicy, TicketRule
from feedback_api.tickets import rules as rule_logic
from feedback_api.tickets.clocks import calendar_of
from feedback_api.tickets.repository import TicketRepository
from feedback_api.tickets.rules import Priority
from feedback_api.tickets.schemas import (
    Escalation,
    RuleAction,
    RuleConditions,
    SlaPolicyCreate,
    SlaPolicyRead,
    SlaPolicyUpdate,
    TicketRuleCreate,
    TicketRuleRead,
    TicketRuleUpdate,
)
from feedback_api.tickets.service.context import TicketContext
from feedback_api.tickets.sla import due_at

DEFAULT_TARGETS: dict[str, dict[str, int]] = {
    "urgent": {"first_response_minutes": 60, "resolution_minutes": 8 * 60},
    "high": {"first_response_minutes": 4 * 60, "resolution_minutes": 24 * 60},
    "normal": {"first_response_minutes": 24 * 60, "resolution_minutes": 72 * 60},
    "low": {"first_response_minutes": 72 * 60, "resolution_minutes": 7 * 24 * 60},
}


def _policy_read(policy: SlaPolicy) -> SlaPolicyRead:
    return SlaPolicyRead(
        id=policy.id,
        key=policy.key,
        name=policy.name,
        targets=policy.targets,  # type: ignore[arg-type]
        business_hours=policy.business_hours,  # type: ignore[arg-type]
        warn_at_percent=policy.warn_at_percent,
        escalation=Escalation(
            raise_priority=policy.escalate_raise_priority, team=policy.escalation_team
        ),
        is_default=policy.is_default,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


def _check_reachable(policy: SlaPolicy, tenant_timezone: str) -> None:
    """Every target must be reachable on the policy's hours: otherwise each new ticket on it
    would fail, and with it the response that opened it."""
    calendar = calendar_of(policy, tenant_timezone)
    if calendar is None:
        return
    longest = max(
        timedelta(minutes=minutes)
        for target in policy.targets.values()
        for minutes in target.values()
    )
    try:
        due_at(utcnow(), longest, calendar)
    except ValueError:
        raise InvalidRequest.at(
            ("body", "business_hours"),
            "targets_unreachable",
            "more open hours, or shorter targets",
            detail="these business hours cannot meet the longest target within three years",
        ) from None


class PolicyService:
    async def seed_defaults(self, session: AsyncSession, tenant_id: UUID) -> None:
        """A new tenant's loop works out of the box: one 24/7 policy and the default rules."""
        repo = TicketRepository(session)
        await repo.add(
            SlaPolicy(
                tenant_id=tenant_id,
                key="standard",
                name="Standard",
                is_default=True,
                targets=DEFAULT_TARGETS,
            )
        )
        for rule in rule_logic.DEFAULT_RULES:
            conditions = RuleConditions(
                kinds=sorted(rule.conditions.kinds),  # type: ignore[arg-type]
                score_min=rule.conditions.score_min,
                score_max=rule.conditions.score_max,
            )
            await repo.add(
                TicketRule(
                    tenant_id=tenant_id,
                    name=rule.name,
                    position=rule.position,
                    conditions=conditions.model_dump(mode="json", exclude_defaults=True),
                    priority=rule.action.priority.value,
                )
            )

    async def list_policies(self, session: AsyncSession, tenant_id: UUID) -> list[SlaPolicyRead]:
        return [_policy_read(p) for p in await TicketRepository(session).policies(tenant_id)]

    async def _policy(self, session: AsyncSession, tenant_id: UUID, key: str) -> SlaPolicy:
        policy = await TicketRepository(session).policy_by_key(tenant_id, key)
        if policy is None:
            raise NotFound("no such SLA policy")
        return policy

    async def get_policy(self, session: AsyncSession, tenant_id: UUID, key: str) -> SlaPolicyRead:
        return _policy_read(await self._policy(session, tenant_id, key))

    async def create_policy(
        self, session: AsyncSession, tenant_id: UUID, body: SlaPolicyCreate
    ) -> SlaPolicyRead:
        repo = TicketRepository(session)
        settings = await repo.settings(tenant_id)
        assert settings is not None  # the caller's key belongs to the tenant
        policy = SlaPolicy(
            tenant_id=tenant_id,
            key=body.key,
            name=body.name,
            is_default=body.is_default,
            targets=body.targets.model_dump(),
            business_hours=body.business_hours.model_dump(mode="json")
            if body.business_hours
            else None,
            warn_at_percent=body.warn_at_percent,
            escalate_raise_priority=body.escalation.raise_priority,
            escalation_team=body.escalation.team,
        )
        _check_reachable(policy, settings.timezone)
        try:
            async with session.begin_nested():
                if body.is_default:
                    await repo.clear_default(tenant_id)
                await repo.add(policy)
        except IntegrityError:
            # the unique key, or a concurrent change of the default
            raise PolicyKeyTaken(
                f"an SLA policy with key {body.key!r} exists, or another request changed the "
                "default at the same time"
            ) from None
        await session.refresh(policy)
        return _policy_read(policy)

    async def update_policy(
        self, session: AsyncSession, tenant_id: UUID, key: str, body: SlaPolicyUpdate
    ) -> SlaPolicyRead:
        """Changes apply to tickets from now on: running clocks keep their targets, and
        pick up new business hours when they next start or resume."""
        values = body.model_dump(mode="json", exclude_unset=True)
        # Objects given are replaced as a whole, their omitted fields taking their defaults
        # (`exclude_unset` would leave them out of the nested dicts too).
        for name in ("targets", "business_hours", "escalation"):
            given = getattr(body, name)
            if name in values and given is not None:
                values[name] = given.model_dump(mode="json")
        policy = await self._policy(session, tenant_id, key)
        repo = TicketRepository(session)
        settings = await repo.settings(tenant_id)
        assert settings is not None
        make_default = values.pop("is_default", None)
        if "escalation" in values:
            escalation = values.pop("escalation")
            policy.escalate_raise_priority = escalation["raise_priority"]
            policy.escalation_team = escalation["team"]
        for name, value in values.items():
            setattr(policy, name, value)
        policy.updated_at = utcnow()
        _check_reachable(policy, settings.timezone)
        try:
            async with session.begin_nested():
                if make_default and not policy.is_default:
                    await repo.clear_default(tenant_id)
                    policy.is_default = True
                await session.flush()
        except IntegrityError:
            raise Conflict("another request changed the default policy at the same time") from None
        await session.refresh(policy)  # the bulk update of the default expired it
        return _policy_read(policy)

    async def delete_policy(self, session: AsyncSession, tenant_id: UUID, key: str) -> None:
        policy = await self._policy(session, tenant_id, key)
        repo = TicketRepository(session)
        if policy.is_default:
            raise PolicyInUse("the default policy cannot be deleted; make another the default")
        if await repo.policy_in_use(tenant_id, policy.id):
            raise PolicyInUse("rules or tickets use this policy")
        await repo.delete_obj(policy)


def _rule_read(rule: TicketRule, ctx: TicketContext) -> TicketRuleRead:
    policy = ctx.policies.get(rule.sla_policy_id) if rule.sla_policy_id else None
    return TicketRuleRead(
        id=rule.id,
        name=rule.name,
        position=rule.position,
        enabled=rule.enabled,
        conditions=RuleConditions.model_validate(rule.conditions),
        action=RuleAction(
            priority=Priority(rule.priority),
            team=rule.team,
            assignee=rule.assignee,
            sla_policy=policy.key if policy else None,
        ),
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _apply_rule_fields(
    rule: TicketRule, body: TicketRuleCreate | TicketRuleUpdate, ctx: TicketContext
) -> None:
    """The fields the body sets (all of them for a new rule)."""
    sent = type(body).model_fields if isinstance(body, TicketRuleCreate) else body.model_fields_set
    for name in ("name", "position", "enabled"):
        if name in sent:
            setattr(rule, name, getattr(body, name))
    if "conditions" in sent and body.conditions is not None:
        rule.conditions = body.conditions.model_dump(mode="json", exclude_defaults=True)
    if "action" in sent and (action := body.action) is not None:
        rule.priority = action.priority.value
        rule.team = action.team
        rule.assignee = action.assignee
        rule.sla_policy_id = (
            ctx.policy_by_key(action.sla_policy, ["body", "action", "sla_policy"]).id
            if action.sla_policy
            else None
        )


class RuleService:
    async def list_rules(self, session: AsyncSession, tenant_id: UUID) -> list[TicketRuleRead]:
        ctx = await TicketContext.load(session, tenant_id)
        return [_rule_read(r, ctx) for r in await TicketRepository(session).rules(tenant_id)]

    async def _rule(self, session: AsyncSession, tenant_id: UUID, rule_id: UUID) -> TicketRule:
        rule = await TicketRepository(session).rule(tenant_id, rule_id)
        if rule is None:
            raise NotFound("no such ticket rule")
        return rule

    async def get_rule(
        self, session: AsyncSession, tenant_id: UUID, rule_id: UUID
    ) -> TicketRuleRead:
        rule = await self._rule(session, tenant_id, rule_id)
        return _rule_read(rule, await TicketContext.load(session, tenant_id))

    async def create_rule(
        self, session: AsyncSession, tenant_id: UUID, body: TicketRuleCreate
    ) -> TicketRuleRead:
        ctx = await TicketContext.load(session, tenant_id)
        rule = TicketRule(tenant_id=tenant_id, conditions={})
        _apply_rule_fields(rule, body, ctx)
        await TicketRepository(session).add(rule)
        await session.refresh(rule)
        return _rule_read(rule, ctx)

    async def update_rule(
        self, session: AsyncSession, tenant_id: UUID, rule_id: UUID, body: TicketRuleUpdate
    ) -> TicketRuleRead:
        ctx = await TicketContext.load(session, tenant_id)
        rule = await self._rule(session, tenant_id, rule_id)
        _apply_rule_fields(rule, body, ctx)
        rule.updated_at = utcnow()
        await session.flush()
        return _rule_read(rule, ctx)

    async def delete_rule(self, session: AsyncSession, tenant_id: UUID, rule_id: UUID) -> None:
        if not await TicketRepository(session).delete_rule(tenant_id, rule_id):
            raise NotFound("no such ticket rule")


policies = PolicyService()
rules = RuleService()
