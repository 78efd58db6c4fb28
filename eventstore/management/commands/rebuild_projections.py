from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS
from tqdm import tqdm

from eventstore import projections
from eventstore.selectors import projections_event_count
from eventstore.services import REBUILD_BATCH_SIZE, projections_rebuild


class Command(BaseCommand):
    help = (
        "Empty projections and replay every event they handle from position 0, in one transaction. "
        "Appends wait until the rebuild commits."
    )

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="Projections to rebuild (default: all).")
        parser.add_argument(
            "--batch-size", type=int, default=REBUILD_BATCH_SIZE, help="Events read and applied at a time."
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, names, batch_size, database, no_progress, **options):
        try:
            chosen = [projections.get(n).name for n in names] if names else [p.name for p in projections.registered()]
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        total = projections_event_count(names=chosen, using=database)
        with tqdm(total=total, unit="ev", disable=no_progress, file=self.stderr._out) as bar:
            replayed = projections_rebuild(names=chosen, batch_size=batch_size, on_progress=bar.update, using=database)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {', '.join(chosen)} from {replayed} events."))
