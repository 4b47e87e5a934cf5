"""The `heeldrop` command: recommend, score, cohort, retrain, models, serve, keys, users, log,
drift."""

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.config import Config
from service.core.errors import HeeldropError, InvalidInput, ModelRefused, error_body

EXIT_OK, EXIT_HELD_BACK, EXIT_BAD_INPUT = 0, 3, 2


def _invalid(exc: InvalidInput) -> dict[str, Any]:
    return error_body(422, "Unprocessable Entity", str(exc), exc.errors)


def _recommender(config: Config) -> Any:
    from service.core.recommend import Recommender
    from service.registry import Registry

    try:
        model = Registry(config.models_dir).load_champion()
    except ModelRefused as exc:
        print(f"heeldrop: {exc}; answering with the rules only", file=sys.stderr)
        model = None
    return Recommender(model=model)


def champion(config: Config) -> Any:
    """The registry's champion, loaded with every check serving makes; InvalidInput saying how
    to get one when there is none or it is refused (`score` and `serve` refuse to run without
    one unless told --rules-only: never a customer file or a shop answered by the rules alone
    unawares)."""
    from service.registry import Registry

    try:
        model = Registry(config.models_dir).load_champion()
    except ModelRefused as exc:
        problem = f"the champion model in {config.models_dir} is refused ({exc})"
    else:
        if model is not None:
            return model
        problem = f"no champion model in {config.models_dir}"
    raise InvalidInput(
        f"{problem}; train one (`make model`, or `heeldrop cohort` then `heeldrop retrain`), "
        "point HEELDROP_MODELS_DIR at the registry, or use the rules alone with --rules-only"
    )


def cmd_recommend(args: argparse.Namespace, config: Config) -> int:
    try:
        text = sys.stdin.read() if args.path in (None, "-") else Path(args.path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(json.dumps(error_body(400, "Bad Request", f"cannot read input: {exc}")))
        return EXIT_BAD_INPUT
    recommender = _recommender(config)
    if not args.lines:
        try:
            print(json.dumps(recommender.recommend(_parse(text)), ensure_ascii=False))
        except InvalidInput as exc:
            print(json.dumps(_invalid(exc)))
            return EXIT_BAD_INPUT
        return EXIT_OK
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out = recommender.recommend(_parse(line))
        except InvalidInput as exc:
            out = {"line": number, "error": _invalid(exc)}
        print(json.dumps(out, ensure_ascii=False))
    return EXIT_OK


def _parse(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidInput(f"not valid JSON: {exc}", {"_json": [str(exc)]}) from None


def _date(text: str) -> datetime:
    """A YYYY-MM-DD argument, as the start of that day in UTC."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def cmd_cohort(args: argparse.Namespace, config: Config) -> int:
    from service.training.cohort import write_cohort

    write_cohort(args.output, args.rows, args.seed)
    print(f"wrote {args.rows} simulated people to {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_retrain(args: argparse.Namespace, config: Config) -> int:
    from service.registry import Registry
    from service.training.retrain import Gates, retrain

    registry = Registry(config.models_dir)
    if not args.data and not args.from_db:
        print("heeldrop retrain: give --data PATH (repeatable), --from-db, or both",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    if args.since and not args.from_db:
        print("heeldrop retrain: --since applies to --from-db", file=sys.stderr)
        return EXIT_BAD_INPUT
    log = None
    if args.from_db:
        from service.db import engine_for, upgrade

        upgrade(config.database_url)
        log = engine_for(config.database_url)
    try:
        gates = Gates(args.max_f1_drop, args.max_log_loss_rise)
        outcome = retrain(
            args.data or [], args.promote, registry, config.cases_path, args.seed, args.origin,
            gates, say=lambda step: print(f"retrain: {step}", file=sys.stderr, flush=True),
            log=log, since=args.since,
        )  # fmt: skip
    except InvalidInput as exc:
        print(f"heeldrop retrain: {exc}", file=sys.stderr)
        for where, errors in list(exc.errors.items())[:20]:
            print(f"  {where}: {'; '.join(errors)}", file=sys.stderr)
        if len(exc.errors) > 20:
            print(f"  ... and {len(exc.errors) - 20} more", file=sys.stderr)
        return EXIT_BAD_INPUT
    invalid = outcome.metadata["training_data"]["invalid_rows"]
    if invalid:
        print(f"left out {invalid} invalid rows (see metadata.json)", file=sys.stderr)
    meta = outcome.metadata
    metrics = meta["metrics"]
    print(
        f"registered {outcome.version} (trained on {meta['trained_on']}): "
        f"macro_f1={metrics['macro_f1']:.4f} log_loss={metrics['log_loss']:.4f}",
        file=sys.stderr,
    )
    verdict = "promoted" if outcome.promoted else "held back"
    print(f"{verdict}; the gates compared both models on {meta['gate']['rows']} and the "
          "clinical cases:", file=sys.stderr)  # fmt: skip
    for line in meta["gate"]["comparison"]:
        print(f"  {line}", file=sys.stderr)
    for reason in outcome.reasons:
        print(
            f"  held back: {reason}" if not outcome.promoted else f"  note: {reason}",
            file=sys.stderr,
        )
    print(outcome.version)
    return EXIT_OK if outcome.promoted else EXIT_HELD_BACK


def cmd_models(args: argparse.Namespace, config: Config) -> int:
    from service.registry import Registry

    registry = Registry(config.models_dir)
    champion = registry.champion()
    if args.action == "list":
        for version in registry.versions():
            m = registry.metadata(version).get("metrics", {})
            mark = "*" if version == champion else " "
            print(
                f"{mark} {version}  macro_f1={m.get('macro_f1', float('nan')):.4f}  "
                f"log_loss={m.get('log_loss', float('nan')):.4f}"
            )
        return EXIT_OK
    if args.action == "show":
        shown = champion if args.version in (None, "champion") else args.version
        if not shown:
            print("heeldrop: no champion is registered", file=sys.stderr)
            return 1
        print(json.dumps(registry.metadata(shown), indent=2))
        return EXIT_OK
    if args.action == "check":  # what serving would do with it: every check of loading
        checked = champion if args.version in (None, "champion") else args.version
        if not checked:
            print("heeldrop: no champion is registered", file=sys.stderr)
            return 1
        try:
            registry.load(checked)
        except ModelRefused as exc:
            print(f"heeldrop: {exc}", file=sys.stderr)
            return 1
        print(f"{checked} can be served", file=sys.stderr)
        return EXIT_OK
    if args.action == "promote":
        registry.promote(args.version)
        print(f"champion is now {args.version}", file=sys.stderr)
        return EXIT_OK
    print(f"champion is now {registry.rollback()}", file=sys.stderr)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    """Replace this process with gunicorn running the app (config in service/gunicorn_conf.py)."""
    import os

    if args.rules_only:
        print("heeldrop serve: --rules-only: answers are the rules' alone (degraded) until a "
              "champion is promoted and loaded (POST /admin/reload)", file=sys.stderr)  # fmt: skip
    else:
        try:
            champion(config)
        except InvalidInput as exc:
            print(f"heeldrop serve: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    # The workers read the same folder and database wherever gunicorn runs them from.
    os.environ["HEELDROP_MODELS_DIR"] = str(config.models_dir)
    os.environ["HEELDROP_DATABASE_URL"] = config.database_url
    os.environ["HEELDROP_BIND"] = f"{args.host}:{args.port}"
    if args.workers:
        os.environ["HEELDROP_WORKERS"] = str(args.workers)
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:service.api.gunicorn_conf"]
    os.execv(sys.executable, [*gunicorn, "service.api.wsgi:app"])
    return EXIT_OK  # not reached


def cmd_keys(args: argparse.Namespace, config: Config) -> int:
    from service.db import engine_for, keys, upgrade

    upgrade(config.database_url)
    engine = engine_for(config.database_url)
    if args.action == "create":
        if not args.name:
            print("heeldrop keys create: --name is required", file=sys.stderr)
            return EXIT_BAD_INPUT
        tenant = args.tenant or args.name
        token = keys.create(engine, args.name, admin=args.admin, tenant=tenant)
        print(token)
        print(f"created {'admin' if args.admin else 'shop'} key {args.name!r} of tenant "
              f"{tenant!r}; it is shown only now, store it safely", file=sys.stderr)  # fmt: skip
    elif args.action == "list":
        for key in keys.listing(engine):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            scope = "admin" if key.admin else "shop"
            print(f"{key.name}\ttenant {key.tenant}\t{scope}\t{state}\t"
                  f"created {key.created_at:%Y-%m-%d}")  # fmt: skip
    else:
        keys.revoke(engine, args.name)
        print(f"revoked {args.name!r}", file=sys.stderr)
    return EXIT_OK


def _password() -> str:
    """A new password: asked twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise InvalidInput("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_users(args: argparse.Namespace, config: Config) -> int:
    from service.db import engine_for, upgrade, users

    upgrade(config.database_url)
    engine = engine_for(config.database_url)
    if args.action == "create":
        if not args.name or not args.tenant:
            print("heeldrop users create: --name and --tenant are required", file=sys.stderr)
            return EXIT_BAD_INPUT
        users.create(engine, args.name, args.tenant, _password())
        print(f"created user {args.name!r} of tenant {args.tenant!r}", file=sys.stderr)
    elif args.action == "list":
        for user in users.listing(engine):
            state = f"disabled {user.disabled_at:%Y-%m-%d}" if user.disabled_at else "active"
            print(f"{user.name}\ttenant {user.tenant}\t{state}\t"
                  f"created {user.created_at:%Y-%m-%d}")  # fmt: skip
    else:
        if not args.name:
            print("heeldrop users disable: give the user's NAME", file=sys.stderr)
            return EXIT_BAD_INPUT
        users.disable(engine, args.name)
        print(f"disabled {args.name!r}", file=sys.stderr)
    return EXIT_OK


def cmd_log(args: argparse.Namespace, config: Config) -> int:
    from service.db import engine_for, log, upgrade

    upgrade(config.database_url)
    engine = engine_for(config.database_url)
    if args.action == "prune":
        if args.request_id:
            print("heeldrop log prune: takes no request id", file=sys.stderr)
            return EXIT_BAD_INPUT
        days = config.log_retention_days
        recs, outcomes = log.prune(engine, days)
        print(f"pruned {recs} recommendations logged over {days} days ago and their "
              f"{outcomes} outcomes", file=sys.stderr)  # fmt: skip
        return EXIT_OK
    if not args.request_id:
        print("heeldrop log forget: give the REQUEST_ID to erase", file=sys.stderr)
        return EXIT_BAD_INPUT
    recs, outcomes = log.forget(engine, args.request_id)
    if not recs:
        print(f"heeldrop log forget: no logged recommendation {args.request_id!r}",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    print(f"erased recommendation {args.request_id!r} and its {outcomes} outcomes",
          file=sys.stderr)  # fmt: skip
    return EXIT_OK


def cmd_drift(args: argparse.Namespace, config: Config) -> int:
    from service.db import engine_for, upgrade
    from service.files import atomic_write_text
    from service.registry import Registry
    from service.training import drift

    champion = Registry(config.models_dir).load_champion()
    if champion is None:
        print(f"heeldrop drift: no champion model in {config.models_dir}", file=sys.stderr)
        return EXIT_BAD_INPUT
    training = champion.metadata.get("training_profile")
    if not training:
        print(f"heeldrop drift: model {champion.version} has no training profile (it was "
              "trained before drift was measured); retrain to get one",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    upgrade(config.database_url)
    engine = engine_for(config.database_url)
    found = drift.measure(engine, training, args.since, args.tenant)
    engine.dispose()
    if found.rows < drift.MIN_ROWS:
        print(f"{found.rows} logged recommendations: too few to compare populations "
              f"(at least {drift.MIN_ROWS})")  # fmt: skip
    for path, psi in list(found.fields.items())[:10]:
        print(f"{path}\tPSI {psi:.3f}{'  SHIFTED' if psi >= drift.STABILITY_LIMIT else ''}")
    for week, counts in list(found.weeks.items())[-4:]:
        total = sum(counts.values())
        shares = ", ".join(f"{band} {n / total:.0%}" for band, n in counts.items() if n)
        print(f"{week}\t{total} answers: {shares}")
    for band, counts in found.outcomes.items():
        total = sum(counts.values())
        print(f"{band}\t{total} outcomes: " + ", ".join(
            f"{name} {n / total:.0%}" for name, n in counts.items()))  # fmt: skip
    if args.output:
        atomic_write_text(args.output, drift.report(found, champion.version, args.since))
        print(f"wrote {args.output}", file=sys.stderr)
    if found.shifted:
        print(f"heeldrop drift: {len(found.shifted)} inputs shifted past PSI "
              f"{drift.STABILITY_LIMIT}: {', '.join(found.shifted)}", file=sys.stderr)  # fmt: skip
        return EXIT_HELD_BACK
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="heeldrop", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recommend", help="one request JSON in, one response JSON out")
    rec.add_argument("path", nargs="?", help="request file, or - for standard input")
    rec.add_argument("--lines", action="store_true", help="JSON Lines in and out")
    rec.set_defaults(func=cmd_recommend)
    coh = sub.add_parser("cohort", help="write the simulated training cohort (docs/cohort.md)")
    coh.add_argument("--rows", type=int, default=50_000, help="people (default 50000)")
    coh.add_argument("--seed", type=int, default=1, help="same seed, same bytes (default 1)")
    coh.add_argument("-o", "--output", required=True, help="CSV to write")
    coh.set_defaults(func=cmd_cohort)
    ret = sub.add_parser("retrain", help="train, evaluate, register and promote a model")
    ret.add_argument("--data", action="append", help="labelled CSV (repeatable)")
    ret.add_argument(
        "--from-db", action="store_true",
        help="learn from the recommendation log's outcomes (docs/outcomes.md), with any --data",
    )  # fmt: skip
    ret.add_argument("--since", type=_date, help="with --from-db: recommendations from DATE on")
    ret.add_argument("--promote", choices=("auto", "never", "force"), default="auto")
    ret.add_argument("--seed", type=int, default=0, help="for the split and the model (default 0)")
    ret.add_argument("--origin", default="simulated", help="where the labels came from")
    ret.add_argument("--max-f1-drop", type=float, default=0.01, help="gate (default 0.01)")
    ret.add_argument(
        "--max-log-loss-rise", type=float, default=0.02, help="gate, a fraction (default 0.02)"
    )
    ret.set_defaults(func=cmd_retrain)
    mod = sub.add_parser("models", help="the model registry")
    mod.add_argument("action", choices=("list", "show", "check", "promote", "rollback"))
    mod.add_argument("version", nargs="?")
    mod.set_defaults(func=cmd_models)
    srv = sub.add_parser("serve", help="serve the HTTP API under gunicorn")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--workers", type=int, help="gunicorn workers (default 2)")
    srv.add_argument(
        "--rules-only", action="store_true",
        help="start without a usable champion model, answering with the rules alone "
        "(degraded); without it, no champion is exit 2",
    )  # fmt: skip
    srv.set_defaults(func=cmd_serve)
    key = sub.add_parser("keys", help="API keys: create (printed once), list, revoke")
    key.add_argument("action", choices=("create", "list", "revoke"))
    key.add_argument("name", nargs="?", help="the key's name (revoke)")
    key.add_argument("--name", dest="name", help="the key's name (create)")
    key.add_argument("--admin", action="store_true", help="may also call /admin/*")
    key.add_argument("--tenant", help="the shop or app it acts for (create; default its name)")
    key.set_defaults(func=cmd_keys)
    usr = sub.add_parser(
        "users", help="staff who sign in to the fitter's page: create, list, disable",
        description="create: the password is asked twice on a terminal, or read as the first "
        "line of standard input (12 characters or more). A user acts for its tenant.",
    )  # fmt: skip
    usr.add_argument("action", choices=("create", "list", "disable"))
    usr.add_argument("name", nargs="?", help="the user's name (disable)")
    usr.add_argument("--name", dest="name", help="the user's name (create)")
    usr.add_argument("--tenant", help="the shop it acts for (create)")
    usr.set_defaults(func=cmd_users)
    log = sub.add_parser(
        "log", help="the recommendation log: prune by age, forget one request",
        description="prune: delete recommendations (and their outcomes) logged more than "
        "HEELDROP_LOG_RETENTION_DAYS ago (default 730), for a daily cron job. forget "
        "REQUEST_ID: erase one recommendation and its outcomes (a person's erasure request).",
    )  # fmt: skip
    log.add_argument("action", choices=("prune", "forget"))
    log.add_argument("request_id", nargs="?", help="the answer's request_id (forget)")
    log.set_defaults(func=cmd_log)
    dri = sub.add_parser(
        "drift", help="logged inputs and answers against the champion's training data",
        description="Population stability per input, recommended bands per week and outcome "
        "rates per band. Exit 0: no input shifted; 3: an input's PSI is 0.25 or more (retrain "
        "or look at the report); 2: no champion, or one without a training profile.",
    )  # fmt: skip
    dri.add_argument("--since", type=_date, help="recommendations from DATE (YYYY-MM-DD) on")
    dri.add_argument("--tenant", help="one tenant's recommendations only")
    dri.add_argument("-o", "--output", help="write the HTML report with plots here")
    dri.set_defaults(func=cmd_drift)
    from service.batch import score as batch  # the batch door registers its own `score` subcommand

    batch.register(sub)
    return top


def _uses(args: argparse.Namespace) -> tuple[bool, bool]:
    """Whether the command reads the models folder, and the database."""
    command = args.command
    models = command in ("recommend", "retrain", "models", "serve", "drift") or (
        command == "score" and not args.rules_only
    )
    database = command in ("keys", "users", "log", "serve", "drift") or (
        command == "retrain" and args.from_db
    )
    return models, database


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "models" and args.action == "promote" and not args.version:
        parser().error("models promote needs a VERSION")
    config = Config()
    for line in config.sources(*_uses(args)):  # stderr: stdout may be data (recommend, keys)
        print(f"heeldrop: {line}", file=sys.stderr)
    try:
        return int(args.func(args, config))
    except HeeldropError as exc:
        print(f"heeldrop: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
