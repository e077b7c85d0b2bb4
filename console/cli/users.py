"""``watchfloor users add|passwd|disable|enable|list --site FILE``: the accounts of a site's users file.

Passwords and PINs are asked for without echo (twice); for automation give ``--password-file FILE`` (the first
line) or name an environment variable with ``--password-env NAME``. On a site not marked as a demo
(``access.demo``) a weak or default password, or a short or trivial PIN, is refused. The users file is written
mode 0600; nothing here prints or logs a password.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from config import ConfigError, load_site
from config.loader import users_file_of
from config.users import (
    ACCOUNT_ROLES,
    Account,
    UsersFileError,
    hash_secret,
    load_users_file,
    save_users_file,
    weak_secret,
)

__all__ = ["add_parser", "run"]


class UsersCommandError(Exception):
    """Why a ``watchfloor users`` command changed nothing."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    u = sub.add_parser("users", help="the site's users file: accounts, passwords, PINs")
    usub = u.add_subparsers(dest="users_cmd", required=True)
    add = usub.add_parser("add", help="add an account (asks for its password, or a field worker's PIN)")
    add.add_argument("id")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=ACCOUNT_ROLES)
    add.add_argument("--team", default="")
    add.add_argument("--tag", default=None, help="a field worker's UWB tag")
    pw = usub.add_parser("passwd", help="set an account's password (or a field worker's PIN)")
    pw.add_argument("id")
    for p in (add, pw):
        src = p.add_mutually_exclusive_group()
        src.add_argument("--password-file", default=None, help="read the password (or PIN) from this file's first line")
        src.add_argument("--password-env", default=None, help="read the password (or PIN) from this environment variable")
    for name, help_ in (("disable", "stop an account logging in (kept for the journal's names)"),
                        ("enable", "let a disabled account log in again")):
        usub.add_parser(name, help=help_).add_argument("id")
    usub.add_parser("list", help="the accounts (never their hashes)")
    for p in usub.choices.values():
        p.add_argument("--site", required=True, help="the site file naming the users file (access.users_file)")


def _secret(args: argparse.Namespace, what: str) -> str:
    if getattr(args, "password_file", None):
        lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if getattr(args, "password_env", None):
        value = os.environ.get(args.password_env)
        if value is None:
            raise UsersCommandError(f"environment variable {args.password_env} is not set")
        return value
    first = getpass.getpass(f"{what}: ")
    if getpass.getpass(f"{what} again: ") != first:
        raise UsersCommandError("the two entries differ: nothing changed")
    return first


def _with_secret(acc: Account, args: argparse.Namespace, demo: bool) -> Account:
    pin = acc.role == "field_worker"
    secret = _secret(args, f"PIN for {acc.id}" if pin else f"password for {acc.id}")
    if not secret:
        raise UsersCommandError("an empty password or PIN: nothing changed")
    problem = weak_secret(secret, user_id=acc.id, pin=pin)
    if problem and not demo:
        raise UsersCommandError(f"refused: {problem} (this site is not a demo)")
    field = "pin_hash" if pin else "password_hash"
    return acc.model_copy(update={field: hash_secret(secret)})


def run(args: argparse.Namespace) -> int:
    try:
        site = load_site(args.site, users=False)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 1
    path = users_file_of(site)
    if path is None:
        print(f"{args.site}: access.users_file: the site names no users file; add one, e.g. "
              "access: {users_file: users.yaml}", file=sys.stderr)
        return 1
    demo = site.access.demo
    accounts: list[Account] = []
    if path.exists() or args.users_cmd != "add":
        try:
            accounts = load_users_file(path)
        except UsersFileError as e:
            print(str(e), file=sys.stderr)
            return 1
    try:
        return _apply(args, path, accounts, demo)
    except (UsersCommandError, OSError) as e:
        print(f"watchfloor users {args.users_cmd}: {e}", file=sys.stderr)
        return 1


def _apply(args: argparse.Namespace, path: Path, accounts: list[Account], demo: bool) -> int:
    by_id = {a.id: a for a in accounts}
    cmd = args.users_cmd
    if cmd == "list":
        for a in accounts:
            kind = "PIN" if a.pin_hash else ("password" if a.password_hash else "no secret set")
            state = "enabled" if a.enabled else "DISABLED"
            print(f"{a.id:16} {a.role:15} {a.team or '-':8} {state:9} {kind:14} {a.name}")
        return 0
    if cmd != "add" and args.id not in by_id:
        print(f"{path}: no account {args.id!r}", file=sys.stderr)
        return 1
    if cmd == "add":
        if args.id in by_id:
            print(f"{path}: account {args.id!r} exists: use `watchfloor users passwd`", file=sys.stderr)
            return 1
        if args.role == "field_worker" and not args.tag:
            print("a field worker signs in as a person with a tag: give --tag", file=sys.stderr)
            return 1
        acc = Account(id=args.id, name=args.name, role=args.role, team=args.team, tag=args.tag)
        by_id[acc.id] = _with_secret(acc, args, demo)
    elif cmd == "passwd":
        by_id[args.id] = _with_secret(by_id[args.id], args, demo)
    else:
        by_id[args.id] = by_id[args.id].model_copy(update={"enabled": cmd == "enable"})
    save_users_file(path, by_id.values())
    print(f"{path}: {cmd} {args.id}: done")
    return 0
