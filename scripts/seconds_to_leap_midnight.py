"""Print the whole seconds from now until N seconds before the end of the next 29 February (UTC).

scripts/test.sh hands this offset to faketime, so the clock-reading tests start just before a day, a month
and a leap February all end at once."""
import sys
from datetime import datetime, timedelta, timezone

lead = int(sys.argv[1]) if len(sys.argv) > 1 else 30
now = datetime.now(timezone.utc)
year = now.year
while True:
    try:
        end = datetime(year, 3, 1, tzinfo=timezone.utc)
        datetime(year, 2, 29)
    except ValueError:
        year += 1
        continue
    if end - timedelta(seconds=lead) > now:
        break
    year += 1
print(int((end - timedelta(seconds=lead) - now).total_seconds()))
