"""``crm import`` and ``crm export`` (registered on the ``crm`` group by :mod:`crmcore.cli`)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

import click
from flask.cli import with_appcontext

from crmcore.errors import CrmError, ValidationError

MODES = ("create", "update", "create-or-update", "upsert")
MATCH_KEYS = ("email", "phone", "number", "external_id")


def _fail(exc: CrmError) -> click.ClickException:
    if isinstance(exc, ValidationError):
        details = "; ".join(f"{field}: {', '.join(why)}" for field, why in exc.errors.items())
        return click.ClickException(f"{exc.message}: {details}")
    return click.ClickException(exc.message)


@click.command(
    "import",
    help="Import contacts from FILE (CSV, vCard or JSON; detected from the extension or the content). "
    "CSV: encoding, delimiter and columns are detected; --map COLUMN=FIELD changes a column's field "
    "(COLUMN is a header or @N for the N-th column; an empty FIELD ignores it). Each row is imported "
    "whole or rejected with its line number and reason. The import runs here, with a progress bar on "
    "stderr; with --queue it is a job of the job queue (CRM_CELERY_BROKER_URL) that `crm worker` runs: "
    "follow it with --status TOKEN.",
)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True), required=False)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="create",
    show_default=True,
    help="create: always create; update: only change matched contacts; create-or-update: both.",
)
@click.option(
    "--match",
    type=click.Choice(MATCH_KEYS),
    default="email",
    show_default=True,
    help="Natural key finding the contact to update.",
)
@click.option("--map", "mappings", multiple=True, metavar="COLUMN=FIELD", help="Override a column's field.")
@click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--format", "file_format", type=click.Choice(("csv", "vcf", "json")), help="Skip detection.")
@click.option("--encoding", help="Skip encoding detection (e.g. cp1252, utf-8).")
@click.option("--delimiter", help="Skip delimiter detection (',', ';', 'tab').")
@click.option(
    "--preview", type=int, metavar="N", help="Show the columns and the first N records; import nothing."
)
@click.option(
    "--queue",
    is_flag=True,
    help="Run the import as a background job (needs CRM_CELERY_BROKER_URL and `crm worker`); prints its token.",
)
@click.option("--status", "status_token", metavar="TOKEN", help="The state of the queued import TOKEN.")
@click.option("--revert", metavar="BATCH", help="Undo the import BATCH (its id is in the report).")
@click.option("--list", "list_imports", is_flag=True, help="List the last imports.")
@with_appcontext
def import_command(
    file: str | None,
    mode: str,
    match: str,
    mappings: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    file_format: str | None,
    encoding: str | None,
    delimiter: str | None,
    preview: int | None,
    queue: bool,
    status_token: str | None,
    revert: str | None,
    list_imports: bool,
) -> None:
    from crmcore.interchange import importer

    try:
        if status_token:
            _status(status_token, as_json)
            return
        if list_imports:
            batches = [importer.batch_to_dict(b) for b in importer.list_batches()]
            if as_json:
                click.echo(json.dumps(batches, indent=2))
            for b in [] if as_json else batches:
                reverted = f" reverted {b['reverted_at'][:16]}" if b["reverted_at"] else ""
                click.echo(
                    f"{b['batch']}  {b['created_at'][:16]}  {b['file_name'] or '-'}  created {b['created']}, "
                    f"updated {b['updated']}, skipped {b['skipped']}, rejected {b['rejected']}{reverted}"
                )
            return
        if revert:
            result = importer.revert_import(revert, None, "cli")
            if as_json:
                click.echo(json.dumps(result, indent=2, ensure_ascii=False))
                return
            click.echo(
                f"import {revert} reverted: {result['deleted']} deleted, {result['restored']} restored, "
                f"{result['notes_removed']} notes removed"
            )
            for kept in result["kept"]:
                click.echo(f"  kept {kept['contact']}: {kept['reason']}")
            return
        if not file:
            raise click.UsageError("give a FILE to import (or --status TOKEN, --revert BATCH, --list)")
        if queue:
            if preview is not None:
                raise click.UsageError("--preview shows the file here: leave out --queue")
            _queue(file, mode, match, mappings, dry_run, as_json, file_format, encoding, delimiter)
            return
        _import(file, mode, match, mappings, dry_run, as_json, file_format, encoding, delimiter, preview)
    except CrmError as exc:
        raise _fail(exc) from None


def _import(
    file: str,
    mode: str,
    match: str,
    mappings: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    file_format: str | None,
    encoding: str | None,
    delimiter: str | None,
    preview: int | None,
) -> None:
    from crmcore.interchange import importer

    stream: Any
    if file == "-":
        stream, size, name = click.open_file("-", "rb"), None, None
    else:
        if not os.path.isfile(file):
            raise click.BadParameter(f"{file}: no such file", param_hint="FILE")
        stream, size, name = open(file, "rb"), os.path.getsize(file), os.path.basename(file)  # noqa: SIM115
    try:
        source_options = {
            "file_name": name,
            "format": file_format,
            "encoding": encoding,
            "delimiter": delimiter,
            "overrides": mappings,
            "size": size,
        }
        if preview is not None:
            shown = importer.preview(importer.Source(stream, **source_options), preview)
            click.echo(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
            return
        options = importer.ImportOptions(mode=mode, match=match, dry_run=dry_run, source="import")
        with click.progressbar(
            length=size or 0, label="importing", file=sys.stderr, show_eta=True, show_pos=False
        ) as bar:
            seen = [0]

            def progress(done: int, report: Any, source: Any) -> None:
                position = source.bytes_read
                if size:
                    bar.update(max(0, position - seen[0]))
                    seen[0] = position

            report = importer.import_file(stream, None, options, progress, **source_options)
    finally:
        if file != "-":
            stream.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    _echo_report(report.to_dict(), options.format)


def _echo_report(report: dict[str, Any], file_format: str | None) -> None:
    click.echo(
        ("dry run, nothing written: " if report["dry_run"] else "")
        + f"{report['created']} created, {report['updated']} updated, {report['skipped']} skipped, "
        f"{report['rejected_total']} rejected"
        + (
            f" ({report['organizations']} organizations created to link people to)"
            if report["organizations"]
            else ""
        )
    )
    unit = {"csv": "line", "vcf": "card", "json": "item"}.get(file_format or "", "record")
    for rejection in report["rejected"]:
        click.echo(f"  {unit} {rejection['position']}: {rejection['reason']}")
    if report["rejected_total"] > len(report["rejected"]):
        click.echo(f"  ... and {report['rejected_total'] - len(report['rejected'])} more rejected")
    for warning in report["warnings"]:
        click.echo(f"  warning {warning['position']}: {warning['reason']}")
    _echo_undo(report["batch"], report["created"] or report["updated"])


def _echo_undo(batch: str | None, changed: int) -> None:
    if batch and changed:
        click.echo(f"import batch {batch}; undo with: crm import --revert {batch}")


def _queue(
    file: str,
    mode: str,
    match: str,
    mappings: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    file_format: str | None,
    encoding: str | None,
    delimiter: str | None,
) -> None:
    """Copy FILE to the import folder and hand its import to the job queue (see crmcore.interchange.runs)."""
    from crmcore.interchange import importer, runs

    if not runs.queue_configured():
        raise click.ClickException(
            "no job queue configured: set CRM_CELERY_BROKER_URL (and run `crm worker`), "
            "or leave out --queue to import here"
        )
    if file != "-" and not os.path.isfile(file):
        raise click.BadParameter(f"{file}: no such file", param_hint="FILE")
    options = importer.ImportOptions(mode=mode, match=match, dry_run=dry_run)
    options.check()
    token = runs.new_token()
    upload, _state = runs.paths(token)
    try:
        with click.open_file(file, "rb") as stream, open(upload, "wb") as copy:
            shutil.copyfileobj(stream, copy, 1 << 20)
        settings = {
            "mode": options.mode,
            "match": options.match,
            "dry_run": dry_run,
            "overrides": list(mappings),
            "format": file_format,
            "encoding": encoding,
            "delimiter": delimiter,
        }
        name = None if file == "-" else os.path.basename(file)
        state = runs.new_state(token, None, name, upload.stat().st_size, settings, "import")
        # A wrong format or --map is refused now, not later by the worker.
        with open(upload, "rb") as stream:
            importer.Source(stream, **runs.source_options(state))
        runs.save_state(token, state)
        runs.start(token, state, None)
    except BaseException:
        runs.discard(token)
        raise
    if as_json:
        click.echo(json.dumps({"token": token, "state": "queued"}))
        return
    click.echo(f"import queued: {token}")
    click.echo(f"a worker (crm worker) runs it; follow it with: crm import --status {token}")


def _status(token: str, as_json: bool) -> None:
    from crmcore.interchange import runs

    state = runs.read_state(token) if runs.TOKEN.match(token) else None
    if state is None or not state.get("run"):
        raise click.ClickException(f"no import {token} in the import folder ({runs.folder()})")
    run = state["run"]
    status = runs.status(state)
    if as_json:
        keys = ("dry_run", "batch", "error", "queued_at", "started_at", "finished_at", "report")
        shown = {"token": token, "file_name": state["file_name"] or None, **status}
        click.echo(json.dumps({**shown, **{k: run.get(k) for k in keys}}, indent=2, ensure_ascii=False))
    elif status["state"] == "queued":
        click.echo(f"{token}: queued, waiting for a worker (crm worker)")
    elif status["state"] == "running":
        counts = status["counts"]
        click.echo(
            f"{token}: running, {status['done']} records read ({status['percent']}%): "
            f"{counts['created']} created, {counts['updated']} updated, {counts['skipped']} skipped, "
            f"{counts['rejected']} rejected"
        )
    elif status["state"] == "done":
        click.echo(f"{token}: done")
        _echo_report(run["report"], run.get("format"))
    else:
        counts = status["counts"]
        click.echo(f"{token}: failed: {run.get('error')}")
        if run.get("dry_run"):
            click.echo("dry run, nothing written")
        elif counts["created"] or counts["updated"]:
            click.echo(
                f"before it stopped, {status['done']} records were processed: {counts['created']} created "
                f"and {counts['updated']} updated are kept"
            )
            _echo_undo(run.get("batch"), counts["created"] + counts["updated"])
        else:
            click.echo("nothing was imported")
    if status["state"] == "failed":
        raise SystemExit(1)


@click.command(
    "export",
    help="Export contacts as CSV (import's columns), JSON (the API's shape) or vCard, streamed to "
    "stdout or -o FILE. Filters as the contact list.",
)
@click.option(
    "--format", "file_format", type=click.Choice(("csv", "json", "vcf")), default="csv", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File to write (default stdout)."
)
@click.option("-q", "--query", "q", help="Search words (names, emails, phones, number).")
@click.option("--kind", type=click.Choice(("person", "organization")))
@click.option("--status", help="prospect, customer, user or supplier.")
@click.option("--tag")
@click.option("--ids", help="Comma-separated contact ids.")
@click.option("--vcard-version", type=click.Choice(("3.0", "4.0")), default="3.0", show_default=True)
@with_appcontext
def export_command(
    file_format: str,
    output: str | None,
    q: str | None,
    kind: str | None,
    status: str | None,
    tag: str | None,
    ids: str | None,
    vcard_version: str,
) -> None:
    from crmcore.interchange import export

    filters: dict[str, Any] = {"q": q, "kind": kind, "status": status, "tag": tag}
    if ids:
        try:
            filters["ids"] = [int(part) for part in ids.split(",") if part.strip()]
        except ValueError:
            raise click.BadParameter("ids are numbers separated by commas", param_hint="--ids") from None
    filters = {k: v for k, v in filters.items() if v is not None}
    try:
        export.check_filters(file_format, **filters)
        if file_format == "vcf":
            chunks = export.export_vcf(None, vcard_version, **filters)
        else:
            chunks = export.export(file_format, None, **filters)
        out = open(output, "wb") if output else click.open_file("-", "wb")  # noqa: SIM115
        try:
            for chunk in chunks:
                out.write(chunk.encode("utf-8"))
        finally:
            if output:
                out.close()
    except CrmError as exc:
        raise _fail(exc) from None
    if output:
        click.echo(f"written to {output}", err=True)
