"""Issue or revoke an API token from the server, for a device account: ``manage.py api_token issue|revoke``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.models import ApiToken
from api.tokens import api_token_issue, api_token_revoke
from lims.audit import system_user
from lims.errors import DomainError
from lims.roles import ROLES


class Command(BaseCommand):
    help = "Issue a role-limited API token for a person (shown once), or revoke one by its prefix."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        issue = sub.add_parser("issue")
        issue.add_argument("username")
        issue.add_argument("--role", required=True, choices=ROLES)
        issue.add_argument("--name", required=True, help="The device or integration that will hold it.")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix", help="The token's first characters, as listed.")
        revoke.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "issue":
                owner = get_user_model().objects.filter(username=options["username"]).first()
                if owner is None:
                    raise CommandError(f"No account {options['username']}.")
                issued = api_token_issue(
                    owner=owner, role=options["role"], name=options["name"], acting_user=system_user()
                )
                self.stdout.write(issued.raw)
                self.stderr.write(f"Token {issued.token.prefix}… issued; it is shown once, store it now.")
            else:
                token = ApiToken.objects.filter(prefix=options["prefix"]).first()
                if token is None:
                    raise CommandError(f"No token with prefix {options['prefix']}.")
                api_token_revoke(token=token, acting_user=system_user(), reason=options["reason"])
                self.stdout.write(f"Token {token.prefix}… revoked.")
        except DomainError as exc:
            raise CommandError(exc.message) from exc
