"""What the admin routes do (SPEC §9), between a parsed body and the store.

The routes stay thin (parse, call this, render); the rules live here, in one place and
testable without HTTP: a secret is made, hashed and returned once; `duration` becomes
`expires` and `budget_duration` a first `budget_reset_at`; a key is named by its secret or
its hash; a row the config declared (`config_owned`) is refused with 403 on any change, so
the TOML stays the one truth for it; a missing id is a 404 naming it; deleting a team or a
user deletes its keys (as LiteLLM does), so no key outlives its owner's limits.

Every change is reported to `changed(kind, ids)` after it is written, so whoever caches
records (the key cache of admission) drops them at once: a revoked key stops working on the
very next call on this instance.  `kind` is "key" (ids are tokens), "team", "user" or
"end_user".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

from gateway_trio.auth import hash_key
from gateway_trio.control import requests as rq
from gateway_trio.control.durations import next_reset
from gateway_trio.control.queries import KeyListQuery, UserListQuery
from gateway_trio.control.records import EndUserRecord, KeyRecord, TeamMember, TeamRecord, UserRecord
from gateway_trio.control.secrets import key_name, new_key
from gateway_trio.control.store import Page, Store
from gateway_trio.errors import BadRequest, Forbidden, NotFound

SHA256_HEX = re.compile(r"[0-9a-f]{64}")

Changed = Callable[[str, Sequence[str]], None]


def token_of(key: str) -> str:
    """The token (sha256 hex) of a key given by its secret or by its token."""
    return key if SHA256_HEX.fullmatch(key) else hash_key(key)


def _nothing_changed(kind: str, ids: Sequence[str]) -> None:
    """The default listener: nothing caches records."""


def _refuse_config_owned(record: KeyRecord | TeamRecord, what: str) -> None:
    if record.config_owned:
        raise Forbidden(f"{what} is declared in the config file: change it there, not through the admin API")


class Admin:
    """The admin operations over one `Store`; `clock` gives unix seconds (tests pass theirs)."""

    def __init__(self, store: Store, *, clock: Callable[[], float], changed: Changed = _nothing_changed) -> None:
        self.store = store
        self.clock = clock
        self.changed = changed

    # --- keys ----------------------------------------------------------------------------

    async def key(self, key: str) -> KeyRecord:
        """The key given by its secret or its token; 404 when there is none."""
        record = await self.store.get_key(token_of(key))
        if record is None:
            raise NotFound("key not found", param="key")
        return record

    async def generate_key(self, body: rq.KeySettings, secret: str | None = None,
                           **fields: Any) -> tuple[KeyRecord, str]:
        """A new key from `body` (and `fields` over it); the record and its secret, shown once."""
        secret = secret or new_key()
        now = self.clock()
        settings = {**body.record_fields(), **fields}
        await self._check_team(settings.get("team_id"))
        record = KeyRecord(
            token=hash_key(secret),
            key_name=key_name(secret),
            expires=next_reset(now, body.duration) if body.duration else None,
            budget_reset_at=_first_reset(now, settings.get("budget_duration")),
            model_budget_reset_at={
                model: _first_reset(now, budget.time_period) for model, budget in settings["model_max_budget"].items()
            },
            **settings,
        )
        stored = await self.store.insert_key(record)
        self.changed("key", [stored.token])  # a cache may hold it as unknown (a chosen secret tried before)
        return stored, secret

    async def _check_team(self, team_id: str | None, param: str = "team_id") -> None:
        # A key or user of a team that does not exist would be refused at every call: say so now.
        if team_id is not None and await self.store.get_team(team_id) is None:
            raise BadRequest(f"team {team_id!r} does not exist", param=param)

    async def update_key(self, body: rq.UpdateKeyRequest) -> KeyRecord:
        record = await self.key(body.key.get_secret_value())
        _refuse_config_owned(record, "this key")
        updated = await self._apply_key_changes(record, body)
        self.changed("key", [record.token])
        return updated

    async def _apply_key_changes(self, record: KeyRecord, body: rq.KeyChanges) -> KeyRecord:
        fields = body.record_fields()
        now = self.clock()
        spend = fields.pop("spend", None)
        if fields.get("team_id") is not None:
            await self._check_team(fields["team_id"])
        if "duration" in body.model_fields_set:
            fields["expires"] = next_reset(now, body.duration) if body.duration else None
        if "budget_duration" in fields and fields["budget_duration"] != record.budget_duration:
            fields["budget_reset_at"] = _first_reset(now, fields["budget_duration"])
        if "model_max_budget" in fields:
            fields["model_budget_reset_at"] = {
                model: record.model_budget_reset_at.get(model) or _first_reset(now, budget.time_period)
                for model, budget in fields["model_max_budget"].items()
            }
        updated = await self.store.update_key(replace(record, **fields)) if fields else record
        if spend is not None:  # the store keeps totals apart from settings
            await self.store.set_spend("keys", record.token, spend)
            updated = await self.key(record.token)
        return updated

    async def delete_keys(self, body: rq.DeleteKeysRequest) -> list[str]:
        """Delete by secret, token or alias; every one named must exist and be ours to delete."""
        records = [await self.key(key) for key in body.key_texts()]
        for alias in body.key_aliases or ():
            record = await self.store.get_key_by_alias(alias)
            if record is None:
                raise NotFound(f"no key has the alias {alias!r}", param="key_aliases")
            records.append(record)
        for record in records:
            _refuse_config_owned(record, f"key {record.key_name}")
        tokens = list(dict.fromkeys(record.token for record in records))
        deleted = await self.store.delete_keys(tokens)
        self.changed("key", deleted)
        return deleted

    async def list_keys(self, query: KeyListQuery) -> Page[KeyRecord]:
        return await self.store.list_keys(team_id=query.team_id, user_id=query.user_id, key_alias=query.key_alias,
                                          page=query.page, size=query.size)

    async def regenerate_key(self, body: rq.RegenerateKeyRequest) -> tuple[KeyRecord, str]:
        """A new secret for the key, its settings kept but for those sent; the old one dies now."""
        record = await self.key(body.key.get_secret_value())
        _refuse_config_owned(record, "this key")
        secret = body.new_key.get_secret_value() if body.new_key is not None else new_key()
        renamed = await self.store.regenerate(record.token, hash_key(secret), key_name(secret))
        self.changed("key", [record.token, renamed.token])
        return await self._apply_key_changes(renamed, body), secret

    async def block_key(self, key: str, blocked: bool) -> KeyRecord:
        record = await self.key(key)
        _refuse_config_owned(record, "this key")
        updated: KeyRecord = await self.store.set_blocked("keys", record.token, blocked)
        self.changed("key", [record.token])
        return updated

    # --- teams ---------------------------------------------------------------------------

    async def team(self, team_id: str) -> TeamRecord:
        record = await self.store.get_team(team_id)
        if record is None:
            raise NotFound(f"team {team_id!r} not found", param="team_id")
        return record

    async def new_team(self, body: rq.NewTeamRequest) -> TeamRecord:
        fields = body.record_fields()
        record = TeamRecord(team_id=body.team_id or str(uuid.uuid4()),
                            budget_reset_at=_first_reset(self.clock(), body.budget_duration), **fields)
        stored = await self.store.insert_team(replace(record, members_with_roles=()))
        for member in record.members_with_roles:  # through the store, so the users learn their team
            stored = await self.store.add_member(stored.team_id, member)
        self.changed("team", [stored.team_id])
        self.changed("user", [m.user_id for m in stored.members_with_roles if m.user_id])
        return stored

    async def update_team(self, body: rq.UpdateTeamRequest) -> TeamRecord:
        record = await self.team(body.team_id)
        _refuse_config_owned(record, f"team {record.team_id!r}")
        fields = body.record_fields()
        if "budget_duration" in fields and fields["budget_duration"] != record.budget_duration:
            fields["budget_reset_at"] = _first_reset(self.clock(), fields["budget_duration"])
        updated = await self.store.update_team(replace(record, **fields)) if fields else record
        self.changed("team", [record.team_id])
        return updated

    async def delete_teams(self, team_ids: Iterable[str]) -> list[str]:
        """Delete teams, their keys and memberships (as LiteLLM does); every team must exist and
        be ours, and so must its keys (the config's keys are the config's to remove)."""
        teams = [await self.team(team_id) for team_id in dict.fromkeys(team_ids)]
        for team in teams:
            _refuse_config_owned(team, f"team {team.team_id!r}")
            for key in await self._all_keys(team_id=team.team_id):
                _refuse_config_owned(key, f"key {key.key_name} of team {team.team_id!r}")
        deleted = await self.store.delete_teams([team.team_id for team in teams])
        self.changed("key", deleted.keys)
        self.changed("team", deleted.ids)
        self.changed("user", [m.user_id for team in teams for m in team.members_with_roles if m.user_id])
        return list(deleted.ids)

    async def teams(self, user_id: str | None = None) -> list[TeamRecord]:
        """Every team, or those `user_id` is a member of."""
        teams = await self._every(self.store.list_teams)
        if user_id is None:
            return teams
        return [team for team in teams if any(member.user_id == user_id for member in team.members_with_roles)]

    async def add_members(self, body: rq.TeamMemberAddRequest) -> tuple[TeamRecord, list[UserRecord]]:
        """Add members; a member named by a `user_id` the store does not know becomes a user (as
        LiteLLM does), so its keys can be budgeted as a user's."""
        team = await self.team(body.team_id)
        _refuse_config_owned(team, f"team {team.team_id!r}")
        users: list[UserRecord] = []
        for member in body.records():
            if member.user_id is not None and await self.store.get_user(member.user_id) is None:
                await self.store.insert_user(UserRecord(user_id=member.user_id, user_email=member.user_email))
            team = await self.store.add_member(team.team_id, member)
            if member.user_id is not None:
                user = await self.store.get_user(member.user_id)
                if user is not None:
                    users.append(user)
        self.changed("team", [team.team_id])
        self.changed("user", [user.user_id for user in users])
        return team, users

    async def remove_member(self, body: rq.TeamMemberDeleteRequest) -> TeamRecord:
        team = await self.team(body.team_id)
        _refuse_config_owned(team, f"team {team.team_id!r}")
        updated = await self.store.remove_member(team.team_id, user_id=body.user_id, user_email=body.user_email)
        self.changed("team", [team.team_id])
        if body.user_id is not None:
            self.changed("user", [body.user_id])
        return updated

    async def block_team(self, team_id: str, blocked: bool) -> TeamRecord:
        team = await self.team(team_id)
        _refuse_config_owned(team, f"team {team_id!r}")
        updated: TeamRecord = await self.store.set_blocked("teams", team_id, blocked)
        self.changed("team", [team_id])
        return updated

    # --- users ---------------------------------------------------------------------------

    async def user(self, user_id: str) -> UserRecord:
        record = await self.store.get_user(user_id)
        if record is None:
            raise NotFound(f"user {user_id!r} not found", param="user_id")
        return record

    async def new_user(self, body: rq.NewUserRequest) -> tuple[UserRecord, KeyRecord | None, str | None]:
        """A user, in the teams named (which must exist), and their key unless told not to."""
        fields = body.user_fields()
        for team_id in fields["teams"]:
            await self._check_team(team_id, "team_id" if team_id == body.team_id else "teams")
        user = UserRecord(user_id=body.user_id or str(uuid.uuid4()),
                          budget_reset_at=_first_reset(self.clock(), body.budget_duration), **{**fields, "teams": ()})
        await self.store.insert_user(user)
        roles = {team.team_id: team.user_role for team in body.teams}
        for team_id in fields["teams"]:
            member = TeamMember(user_id=user.user_id, user_email=user.user_email, role=roles.get(team_id, "user"))
            await self.store.add_member(team_id, member)
        user = await self.user(user.user_id)
        self.changed("user", [user.user_id])
        self.changed("team", list(user.teams))
        if not body.auto_create_key:
            return user, None, None
        key_body = rq.GenerateKeyRequest.model_validate({"duration": body.duration})
        key, secret = await self.generate_key(key_body, user_id=user.user_id, **body.key_fields())
        return user, key, secret

    async def update_user(self, body: rq.UpdateUserRequest) -> UserRecord:
        record = await (self.user(body.user_id) if body.user_id is not None else self._user_by_email(body.user_email))
        fields = body.record_fields()
        spend = fields.pop("spend", None)
        if "budget_duration" in fields and fields["budget_duration"] != record.budget_duration:
            fields["budget_reset_at"] = _first_reset(self.clock(), fields["budget_duration"])
        updated = await self.store.update_user(replace(record, **fields)) if fields else record
        if spend is not None:
            await self.store.set_spend("users", record.user_id, spend)
            updated = await self.user(record.user_id)
        self.changed("user", [record.user_id])
        return updated

    async def _user_by_email(self, email: str | None) -> UserRecord:
        matches = [user for user in await self._every(self.store.list_users) if user.user_email == email]
        if not matches:
            raise NotFound(f"no user has the e-mail {email!r}", param="user_email")
        if len(matches) > 1:
            raise BadRequest(f"several users have the e-mail {email!r}: name one by 'user_id'", param="user_email")
        return matches[0]

    async def delete_users(self, user_ids: Iterable[str]) -> list[str]:
        """Delete users, their keys and their memberships (as LiteLLM does)."""
        users = [await self.user(user_id) for user_id in dict.fromkeys(user_ids)]
        for user in users:
            for key in await self._all_keys(user_id=user.user_id):
                _refuse_config_owned(key, f"key {key.key_name} of user {user.user_id!r}")
        deleted = await self.store.delete_users([user.user_id for user in users])
        self.changed("key", deleted.keys)
        self.changed("user", deleted.ids)
        self.changed("team", [team_id for user in users for team_id in user.teams])
        return list(deleted.ids)

    async def list_users(self, query: UserListQuery) -> Page[UserRecord]:
        return await self.store.list_users(page=query.page, size=query.page_size)

    async def keys_of(self, *, user_id: str | None = None, team_id: str | None = None) -> list[KeyRecord]:
        return await self._all_keys(user_id=user_id, team_id=team_id)

    # --- end-users -----------------------------------------------------------------------

    async def end_user(self, user_id: str) -> EndUserRecord:
        record = await self.store.get_end_user(user_id)
        if record is None:
            raise NotFound(f"customer {user_id!r} not found", param="user_id")
        return record

    async def new_end_user(self, body: rq.NewCustomerRequest) -> EndUserRecord:
        fields = body.record_fields()
        record = EndUserRecord(user_id=body.user_id, budget_reset_at=_first_reset(self.clock(), body.budget_duration),
                               **fields)
        stored = await self.store.insert_end_user(record)
        self.changed("end_user", [stored.user_id])  # end-users are seen (and cached) before they are made
        return stored

    async def update_end_user(self, body: rq.UpdateCustomerRequest) -> EndUserRecord:
        record = await self.end_user(body.user_id)
        fields = body.record_fields()
        if "budget_duration" in fields and fields["budget_duration"] != record.budget_duration:
            fields["budget_reset_at"] = _first_reset(self.clock(), fields["budget_duration"])
        updated = await self.store.update_end_user(replace(record, **fields)) if fields else record
        self.changed("end_user", [record.user_id])
        return updated

    async def delete_end_users(self, user_ids: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(user_ids))
        for user_id in ids:
            await self.end_user(user_id)
        deleted = await self.store.delete_end_users(ids)
        self.changed("end_user", deleted)
        return deleted

    async def block_end_users(self, user_ids: Iterable[str], blocked: bool) -> list[EndUserRecord]:
        """Block or unblock; an end-user not seen yet is created blocked (as LiteLLM does), so
        a customer can be refused before their first call."""
        records = []
        for user_id in dict.fromkeys(user_ids):
            if await self.store.get_end_user(user_id) is None:
                if not blocked:
                    raise NotFound(f"customer {user_id!r} not found", param="user_ids")
                await self.store.insert_end_user(EndUserRecord(user_id=user_id))
            records.append(await self.store.set_blocked("end_users", user_id, blocked))
        self.changed("end_user", [record.user_id for record in records])
        return records

    async def end_users(self) -> list[EndUserRecord]:
        return await self._every(self.store.list_end_users)

    # --- listing everything --------------------------------------------------------------

    async def _all_keys(self, **filters: str | None) -> list[KeyRecord]:
        return await self._every(self.store.list_keys, **filters)

    @staticmethod
    async def _every(list_page: Callable[..., Any], **filters: Any) -> list[Any]:
        """Every item of a paged listing, page by page (the store caps a page's size)."""
        items: list[Any] = []
        page = 1
        while True:
            found = await list_page(**filters, page=page, size=PAGE)
            items.extend(found.items)
            if page >= found.total_pages:
                return items
            page += 1


PAGE = 100  # the store's largest page


def _first_reset(now: float, duration: str | None) -> float | None:
    return next_reset(now, duration) if duration else None


__all__ = ["Admin", "Changed", "token_of"]
