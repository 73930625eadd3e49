"""Users, teams and API tokens. Passwords are hashed with scrypt (werkzeug); tokens are stored as SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from crmcore.errors import Conflict, CrmError, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import ApiToken, Team, User, utcnow
from crmcore.services.access import forget_team_ids
from crmcore.services.transactions import transaction

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
MAX_FAILURES = 5
LOCK_MINUTES = 5
TOKEN_PREFIX = "crm_"
LANGUAGES = ("en", "fr")


class LoginThrottled(CrmError):
    status = 429


def _check_email(email: str) -> str:
    text = (email or "").strip().lower()
    if not EMAIL_RE.match(text) or len(text) > 254:
        raise ValidationError({"email": [f"{email!r} is not an email address"]})
    return text


def _check_password(password: str) -> str:
    if not password or len(password) < MIN_PASSWORD:
        raise ValidationError({"password": [f"must be at least {MIN_PASSWORD} characters"]})
    if len(password) > 1024:
        raise ValidationError({"password": ["must be at most 1024 characters"]})
    return password


def create_user(
    email: str, password: str | None, is_admin: bool = False, name: str = "", language: str | None = None
) -> User:
    address = _check_email(email)
    if language is not None and language not in LANGUAGES:
        raise ValidationError({"language": [f"must be one of: {', '.join(LANGUAGES)}"]})
    with transaction():
        if db.session.scalar(select(User).where(func.lower(User.email) == address)):
            raise Conflict(f"a user with email {address} already exists", field="email")
        user = User(
            email=address,
            name=(name or "").strip()[:200],
            is_admin=is_admin,
            language=language,
            password_hash=generate_password_hash(_check_password(password)) if password else None,
        )
        db.session.add(user)
    return user


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.email)))


def update_user(
    user_id: int,
    name: str | None = None,
    is_admin: bool | None = None,
    active: bool | None = None,
    language: str | None = None,
    team_ids: list[int] | None = None,
) -> User:
    with transaction():
        user = get_user(user_id)
        if name is not None:
            user.name = name.strip()[:200]
        if is_admin is not None:
            user.is_admin = is_admin
        if active is not None:
            user.active = active
        if language is not None:
            if language not in LANGUAGES:
                raise ValidationError({"language": [f"must be one of: {', '.join(LANGUAGES)}"]})
            user.language = language
        if team_ids is not None:
            user.teams = [get_team(i) for i in team_ids]
    if team_ids is not None:
        forget_team_ids()  # team members are responsibles of the team's contacts (services.access)
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user if the password is right. Repeated failures lock the account for a few minutes."""
    user = find_user(email)
    now = utcnow()
    if user is None or not user.active:
        # Same cost as a real check so timing does not reveal which emails exist.
        check_password_hash(generate_password_hash("x"), password or "")
        return None
    if user.locked_until is not None and user.locked_until > now:
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        raise LoginThrottled(f"too many failed sign-ins: try again in {minutes} minute(s)")
    with transaction():
        if user.password_hash and check_password_hash(user.password_hash, password or ""):
            user.failed_logins = 0
            user.locked_until = None
            return user
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
    return None


def set_password(user_id: int, new_password: str, current_password: str | None = None) -> None:
    with transaction():
        user = get_user(user_id)
        if current_password is not None and not (
            user.password_hash and check_password_hash(user.password_hash, current_password)
        ):
            raise ValidationError({"current_password": ["is not your current password"]})
        user.password_hash = generate_password_hash(_check_password(new_password))


# -- teams ---------------------------------------------------------------------------------------


def create_team(name: str) -> Team:
    text = (name or "").strip()
    if not text or len(text) > 120:
        raise ValidationError({"name": ["is required (at most 120 characters)"]})
    with transaction():
        if db.session.scalar(select(Team).where(Team.name == text)):
            raise Conflict(f"team {text!r} already exists", field="name")
        team = Team(name=text)
        db.session.add(team)
    return team


def get_team(team_id: int) -> Team:
    team = db.session.get(Team, team_id) if isinstance(team_id, int) else None
    if team is None:
        raise NotFound(f"team {team_id} not found")
    return team


def list_teams() -> list[Team]:
    return list(db.session.scalars(select(Team).order_by(Team.name)))


def delete_team(team_id: int) -> None:
    with transaction():
        db.session.delete(get_team(team_id))
    forget_team_ids()


# -- API tokens ----------------------------------------------------------------------------------


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user_id: int, name: str = "") -> tuple[ApiToken, str]:
    """A new token for ``user_id``: returns the row and the token text, shown once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction():
        user = get_user(user_id)
        row = ApiToken(
            user_id=user.id,
            name=(name or "").strip()[:120],
            token_hash=_hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
        )
        db.session.add(row)
    return row, token


def user_for_token(token: str) -> User | None:
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at) > timedelta(minutes=5):
        # Coarse "last used" so reads do not write on every request.
        with transaction():
            row.last_used_at = now
    return row.user


def list_tokens(user_id: int | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(db.session.scalars(query))


def revoke_token(token_id: int, user_id: int | None = None) -> ApiToken:
    """Revoke a token; with ``user_id`` only that user's own tokens."""
    with transaction():
        row = db.session.get(ApiToken, token_id) if isinstance(token_id, int) else None
        if row is None or (user_id is not None and row.user_id != user_id):
            raise NotFound(f"token {token_id} not found")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
    return row
