"""`manage.py load_prices FILE`: load operator prices (the format of gateway/config/prices.json) over the built-in
price table."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from gateway.config.prices import PriceFileError, prices_load, read_price_file


class Command(BaseCommand):
    help = (
        "Load model prices from a JSON file in the format of gateway/config/prices.json ({\"providers\": {provider: "
        "{model: {input, output, cached_input, audio_input, audio_output}}}}, USD per million tokens). Loaded prices override the built-in "
        "table; a model definition's own prices override both. Running servers pick them up within seconds."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="Path to the price file.")
        parser.add_argument("--replace", action="store_true",
                            help="Also delete loaded prices that are not in the file (the built-in table stays).")

    def handle(self, *args, file: str, replace: bool, **options) -> None:
        try:
            as_of, entries = read_price_file(file)
        except PriceFileError as exc:
            raise CommandError(str(exc)) from None
        counts = prices_load(entries=entries, replace=replace)
        dated = f" (as of {as_of})" if as_of else ""
        self.stdout.write(f"Loaded {len(entries)} prices{dated}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
