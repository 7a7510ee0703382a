"""The calendar writer: valid RFC 5545 files that expand, with recurring-ical-events, to the ground truth."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import icalendar
import numpy as np
import pandas as pd
import pytest
import recurring_ical_events

from simulator.calendar import (
    CalendarObjects,
    build_internal_meetings,
    customer_meeting_objects,
    occurrences,
    plant_calendar_faults,
    write_calendar_drops,
)

START = dt.date(2024, 1, 1)
END = dt.date(2024, 12, 31)
EXPANSION = (dt.datetime(2023, 1, 1), dt.datetime(2026, 1, 1))
TEAMS = (  # manager's zone, reps in the team
    ("America/New_York", 3),
    ("Europe/Berlin", 3),
    ("Australia/Sydney", 2),
    ("Asia/Tokyo", 2),
    ("Europe/London", 2),
)


def make_reps(hired: dict[str, dt.date] | None = None, left: dict[str, dt.date] | None = None) -> pd.DataFrame:
    """A VP in New York and five teams in five zones; `hired` and `left` set start and end dates by user_id."""
    rows = [("U00", "vera.pike", "Vera", "Pike", "America/New_York", None, "T0", "Manager")]
    number = 1
    for team, (zone, size) in enumerate(TEAMS, start=1):
        manager = f"U{number:02d}"
        rows.append((manager, f"manager{team}", f"Mia{team}", "Müller, Jr.", zone, "U00", "T0", "Manager"))
        number += 1
        for _ in range(size):
            rows.append((f"U{number:02d}", f"rep{number}", f"Zoë{number}", "Ødegård", zone, manager, f"T{team}", "AE"))
            number += 1
    reps = pd.DataFrame(
        rows, columns=["user_id", "email", "first_name", "last_name", "timezone", "manager_user_id", "team_id", "role"]
    )
    reps["email"] = reps["email"] + "@sales.example.com"
    reps["start_date"] = [(hired or {}).get(user, dt.date(2020, 1, 1)) for user in reps["user_id"]]
    reps["end_date"] = [(left or {}).get(user) for user in reps["user_id"]]
    return reps


def make_meetings(reps: pd.DataFrame, count: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customer meetings with reschedules, cancellations, UTC-written invites and text that needs escaping."""
    rng = np.random.default_rng(seed)
    organizers = reps.loc[reps["role"] == "AE", "user_id"].to_numpy()
    created = pd.Timestamp(START, tz="UTC") + pd.to_timedelta(rng.integers(0, 330 * 86_400, count), unit="s")
    lead = pd.to_timedelta(rng.integers(86_400, 20 * 86_400, count), unit="s")
    original = (created + lead).floor("15min")
    rescheduled = rng.random(count) < 0.15
    cancelled = rng.random(count) < 0.1
    meetings = pd.DataFrame(
        {
            "uid": [f"meeting-{i:05d}@crm.example.com" for i in range(count)],
            "organizer_user_id": rng.choice(organizers, count),
            "created_at": created,
            "start_at": original + pd.to_timedelta(np.where(rescheduled, rng.integers(1, 4, count), 0), unit="D"),
            "original_start_at": original,
            "rescheduled_at": pd.Series(created + (lead * rng.random(count)).floor("s")).where(rescheduled),
            "cancelled_at": pd.Series(created + (lead * rng.random(count)).floor("s")).where(cancelled),
            "duration_minutes": rng.choice([30, 45, 60], count),
            "summary": [f"Discovery call, Acme {i}; pricing \\ next steps\nagenda" for i in range(count)],
            "location": rng.choice(["Zoom", "Customer site, Berlin", ""], count),
            "use_utc": rng.random(count) < 0.2,
        }
    )
    per_meeting = rng.integers(1, 4, count)
    index = np.repeat(np.arange(count), per_meeting)
    attendees = pd.DataFrame(
        {
            "uid": meetings["uid"].to_numpy()[index],
            "email": [f"contact{i}@customer.example.org" for i in range(len(index))],
            "name": [f"Çağla Ünal-Øyen, Head of Procurement {i}" for i in range(len(index))],
            "partstat": rng.choice(["ACCEPTED", "TENTATIVE", "DECLINED", "NEEDS-ACTION"], len(index)),
            "role": rng.choice(["REQ-PARTICIPANT", "OPT-PARTICIPANT"], len(index)),
        }
    )
    return meetings, attendees


def drop_windows(every_days: int) -> list[tuple[dt.date, pd.Timestamp, pd.Timestamp]]:
    """The project's convention: drop date d covers [previous drop + 1 day, d + 1 day); the first starts in 1900."""
    dates = [START + dt.timedelta(days=k) for k in range(every_days - 1, (END - START).days + 1, every_days)]
    starts = [dt.date(1900, 1, 1)] + [d + dt.timedelta(days=1) for d in dates[:-1]]
    return [
        (d, pd.Timestamp(s, tz="UTC"), pd.Timestamp(d + dt.timedelta(days=1), tz="UTC"))
        for d, s in zip(dates, starts, strict=True)
    ]


@dataclass
class World:
    reps: pd.DataFrame
    objects: list[CalendarObjects]
    drops: list[tuple[dt.date, pd.Timestamp, pd.Timestamp]]
    out: Path
    files: list[Path]

    @cached_property
    def calendars(self) -> dict[Path, icalendar.Calendar]:
        return {path: icalendar.Calendar.from_ical(path.read_bytes()) for path in self.files}

    def exports_of(self, uid: str) -> list[icalendar.Event]:
        """Every exported VEVENT of a UID, in drop order (one mailbox's copy per drop)."""
        events: dict[str, list[icalendar.Event]] = {}
        for path, calendar in self.calendars.items():
            events.setdefault(path.parent.name, []).extend(e for e in calendar.walk("VEVENT") if e["UID"] == uid)
        return [event for _, found in sorted(events.items()) for event in found[:1]]

    @cached_property
    def latest_view(self) -> icalendar.Calendar:
        """What a reader holds after applying every drop in order: the last exported state of each UID."""
        components: dict[str, list[icalendar.Event]] = {}
        timezones: dict[str, icalendar.Timezone] = {}
        for path in sorted(self.files, key=lambda p: (p.parent.name, p.name)):
            calendar = self.calendars[path]
            timezones.update((str(tz["TZID"]), tz) for tz in calendar.walk("VTIMEZONE"))
            in_file: dict[str, list[icalendar.Event]] = {}
            for event in calendar.walk("VEVENT"):
                in_file.setdefault(str(event["UID"]), []).append(event)
            components.update(in_file)
        view = icalendar.Calendar()
        view.add("prodid", "-//tests//EN")
        view.add("version", "2.0")
        for timezone in timezones.values():
            view.add_component(timezone)
        for events in components.values():
            for event in events:
                view.add_component(event)
        return view


def write_world(out: Path, reps: pd.DataFrame | None = None, every_days: int = 14) -> World:
    reps = make_reps() if reps is None else reps
    internal = build_internal_meetings(reps, START, END, np.random.default_rng(3))
    customer = customer_meeting_objects(*make_meetings(reps, 400))
    drops = drop_windows(every_days)
    files = write_calendar_drops([internal, customer], reps, drops, out)
    return World(reps, [internal, customer], drops, out, files)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return write_world(tmp_path_factory.mktemp("calendar"))


def parse(path: Path) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(path.read_bytes())


def as_utc(value: dt.date | dt.datetime) -> pd.Timestamp:
    """Occurrence starts as UTC Timestamps; an all-day date is midnight UTC, as in the ground truth."""
    if not isinstance(value, dt.datetime):
        return pd.Timestamp(value, tz="UTC")
    return pd.Timestamp(value).tz_convert("UTC")


def expanded(calendar: icalendar.Calendar) -> pd.DataFrame:
    events = recurring_ical_events.of(calendar).between(*EXPANSION)
    return pd.DataFrame(
        [(str(e["UID"]), as_utc(e.start), str(e.get("STATUS"))) for e in events], columns=["uid", "start_at", "status"]
    )


def series_occurrences(world: World, uid: str) -> pd.DataFrame:
    only = icalendar.Calendar()
    for component in world.latest_view.subcomponents:
        if component.name == "VTIMEZONE" or component.get("UID") == uid:
            only.add_component(component)
    return expanded(only)


def test_every_written_file_parses_with_icalendar_and_expands_with_recurring_ical_events(world):
    assert len(world.files) > 50
    for path, calendar in world.calendars.items():
        assert calendar["PRODID"] == "-//Sales Warehouse Simulator//EN"
        assert len(recurring_ical_events.of(calendar).between(*EXPANSION)) > 0, path


def test_files_are_one_per_mailbox_and_drop_named_by_the_email_local_part(world):
    local_parts = set(world.reps["email"].str.split("@").str[0])
    drop_dates = {str(d) for d, _, _ in world.drops}
    for path in world.files:
        assert path.relative_to(world.out).parts[:2] == ("landing", "calendar")
        assert path.parent.name in drop_dates
        assert path.stem in local_parts


def test_the_latest_exports_expand_to_exactly_the_ground_truth_occurrences(world):
    found = expanded(world.latest_view)
    truth = occurrences(world.objects, world.drops[-1][2])
    assert set(truth["kind"]) == {"customer", "one_on_one", "standup", "all_day"}
    assert set(truth["status"]) == {"CONFIRMED", "TENTATIVE", "CANCELLED"}
    assert not found.duplicated(["uid", "start_at"]).any()
    assert set(zip(found["uid"], found["start_at"], strict=True)) == set(
        zip(truth["uid"], truth["start_at"], strict=True)
    )
    assert set(found.itertuples(index=False)) == set(truth[["uid", "start_at", "status"]].itertuples(index=False))


def test_a_weekly_one_on_one_across_the_march_dst_change_keeps_its_local_wall_clock_time(world):
    truth = occurrences(world.objects, world.drops[-1][2])
    new_york_q1 = truth.loc[(truth["kind"] == "one_on_one") & truth["uid"].str.startswith("1on1-U00-U01-2024-01")]
    uid = new_york_q1["uid"].iloc[0]
    found = series_occurrences(world, uid)
    master = next(e for e in world.latest_view.walk("VEVENT") if e["UID"] == uid and "RRULE" in e)
    local_time = master.start.time()
    unmoved = found.loc[found["start_at"].dt.tz_convert("America/New_York").dt.time == local_time]
    before = unmoved.loc[unmoved["start_at"] < pd.Timestamp("2024-03-10", tz="UTC"), "start_at"]
    after = unmoved.loc[unmoved["start_at"] > pd.Timestamp("2024-03-11", tz="UTC"), "start_at"]
    assert len(before) >= 3 and len(after) >= 2
    assert set(before.dt.hour) == {(local_time.hour + 5) % 24}  # EST is UTC-5
    assert set(after.dt.hour) == {(local_time.hour + 4) % 24}  # EDT is UTC-4


def test_an_exdate_removes_an_occurrence_and_a_recurrence_id_override_moves_one(world):
    until = world.drops[-1][2]
    internal = world.objects[0]
    exceptions = internal.exceptions.loc[internal.exceptions["known_at"] < until]
    exdate = exceptions.loc[exceptions["is_exdate"] & exceptions["uid"].str.startswith("1on1-")].iloc[0]
    moved = exceptions.loc[~exceptions["is_exdate"] & (exceptions["status"] == "CONFIRMED")].iloc[0]

    skipped = series_occurrences(world, exdate["uid"])
    assert exdate["recurrence_id"] not in set(skipped["start_at"])
    assert len(skipped) > 5

    shifted = series_occurrences(world, moved["uid"])
    assert moved["recurrence_id"] not in set(shifted["start_at"])
    assert moved["start_at"] in set(shifted["start_at"])
    assert moved["start_at"] > moved["recurrence_id"]


def test_an_override_with_status_cancelled_is_kept_and_marked_cancelled(world):
    internal = world.objects[0]
    cancelled = internal.exceptions.loc[internal.exceptions["status"] == "CANCELLED"].iloc[0]
    found = series_occurrences(world, cancelled["uid"]).set_index("start_at")
    assert found.loc[cancelled["recurrence_id"], "status"] == "CANCELLED"


def test_a_cancelled_customer_meeting_is_exported_with_status_cancelled(world):
    meetings, _ = make_meetings(world.reps, 400)
    cancelled = meetings.loc[meetings["cancelled_at"] < world.drops[-1][2]].iloc[0]
    exports = world.exports_of(cancelled["uid"])
    assert exports[-1]["STATUS"] == "CANCELLED"
    assert exports[0]["STATUS"] == "CONFIRMED" or exports[0]["DTSTAMP"].dt > cancelled["cancelled_at"]
    assert [int(e["SEQUENCE"]) for e in exports] == sorted(int(e["SEQUENCE"]) for e in exports)


def test_a_rescheduled_meeting_is_re_exported_whole_with_its_new_start_and_a_higher_sequence(world):
    meetings, _ = make_meetings(world.reps, 400)
    rescheduled = meetings.loc[meetings["rescheduled_at"].notna() & meetings["cancelled_at"].isna()]
    moved, exports = next(
        (m, world.exports_of(m.uid)) for m in rescheduled.itertuples() if len(world.exports_of(m.uid)) > 1
    )
    moved = moved._asdict()
    assert as_utc(exports[0].start) == moved["original_start_at"]
    assert as_utc(exports[-1].start) == moved["start_at"]
    assert int(exports[-1]["SEQUENCE"]) > int(exports[0]["SEQUENCE"])
    assert exports[-1].attendees == exports[0].attendees


def test_text_is_escaped_and_reads_back_unchanged(world):
    meetings, attendees = make_meetings(world.reps, 400)
    event = world.exports_of(meetings["uid"].iloc[0])[0]
    assert str(event["SUMMARY"]) == meetings["summary"].iloc[0]
    raw = next(p for p in world.files if meetings["uid"].iloc[0].encode() in p.read_bytes()).read_bytes()
    assert rb"Acme 0\; pricing \\ next steps\nagenda" in raw.replace(b"\r\n ", b"")
    names = {attendee.params["CN"] for attendee in event.attendees}
    assert names <= set(attendees["name"])


def test_lines_are_folded_at_75_octets_without_splitting_characters(world):
    folded = 0
    for path in world.files:
        data = path.read_bytes()
        assert data.endswith(b"END:VCALENDAR\r\n")
        lines = data.split(b"\r\n")
        assert all(len(line) <= 75 for line in lines), path
        assert b"\n" not in data.replace(b"\r\n", b"")
        for line in lines:
            line.decode("utf-8")  # a fold never cuts a multi-byte character
        folded += sum(line.startswith(b" ") for line in lines)
    assert folded > 100


def test_each_file_has_one_vtimezone_per_tzid_it_uses(world):
    for path in world.files[::7]:
        text = path.read_text(encoding="utf-8").replace("\r\n ", "")
        used = {line.split("TZID=")[1].split(":")[0] for line in text.splitlines() if ";TZID=" in line}
        defined = [line.removeprefix("TZID:") for line in text.splitlines() if line.startswith("TZID:")]
        assert sorted(defined) == sorted(used)


def test_the_same_inputs_give_byte_identical_files(world, tmp_path):
    again = write_world(tmp_path)
    assert [p.relative_to(tmp_path) for p in again.files] == [p.relative_to(world.out) for p in world.files]
    for first, second in zip(world.files, again.files, strict=True):
        assert first.read_bytes() == second.read_bytes(), first


def test_a_drop_holds_only_the_objects_that_changed_in_its_window(world):
    second_drop, window_start, window_end = world.drops[1]
    for path in (world.out / "landing/calendar" / str(second_drop)).glob("*.ics"):
        for event in world.calendars[path].walk("VEVENT"):
            assert window_start <= event["LAST-MODIFIED"].dt < window_end
            assert event["DTSTAMP"].dt == window_end


def test_a_mailbox_exports_only_while_its_owner_is_employed(tmp_path):
    left = dt.date(2024, 5, 15)
    world = write_world(tmp_path, make_reps(left={"U04": left}))
    exported_on = sorted(p.parent.name for p in world.files if p.name == "rep4.ics")
    assert exported_on and exported_on[-1] <= str(left)
    assert any(p.parent.name > str(left) for p in world.files if p.name == "rep3.ics")


def test_given_owners_and_drops_the_ground_truth_is_exactly_what_the_files_show_after_a_departure(tmp_path):
    world = write_world(tmp_path, make_reps(left={"U04": dt.date(2024, 5, 15)}))
    until = world.drops[-1][2]
    visible = occurrences(world.objects, until, reps=world.reps, drops=world.drops)
    found = expanded(world.latest_view)
    assert set(found.itertuples(index=False)) == set(visible[["uid", "start_at", "status"]].itertuples(index=False))
    everything = occurrences(world.objects, until)
    unseen = set(everything["uid"]) - set(visible["uid"])
    assert unseen and set(everything.loc[everything["uid"].isin(unseen), "organizer_user_id"]) == {"U04"}


def test_a_rep_hired_during_the_year_first_exports_everything_in_the_mailbox(tmp_path):
    hired = dt.date(2024, 6, 3)
    late = write_world(tmp_path, make_reps(hired={"U03": hired}))
    mailbox = "rep3.ics"
    exported_on = sorted(p.parent.name for p in late.files if p.name == mailbox)
    assert exported_on[0] >= str(hired)
    first = parse(next(p for p in late.files if p.name == mailbox and p.parent.name == exported_on[0]))
    first_export = {str(e["UID"]) for e in first.walk("VEVENT")}
    window_end = next(end for day, _, end in late.drops if str(day) == exported_on[0])
    truth = occurrences(late.objects, window_end)
    attended = set(late.objects[0].attendees.loc[late.objects[0].attendees["user_id"] == "U03", "uid"])
    organized = set(truth.loc[truth["organizer_user_id"] == "U03", "uid"])
    assert first_export == (attended | organized) & set(truth["uid"])


def test_a_meeting_in_the_repeated_hour_when_dst_ends_is_written_in_utc(tmp_path):
    # Regression: 01:30 local on 2024-11-03 in New York happens twice; a TZID value can only name the first.
    reps = make_reps()
    second_pass = pd.Timestamp("2024-11-03 06:30", tz="UTC")  # 01:30 EST, after the clocks went back
    meetings, attendees = make_meetings(reps, 1)
    meetings = meetings.assign(
        organizer_user_id="U02",
        start_at=second_pass,
        original_start_at=second_pass,
        created_at=pd.Timestamp("2024-10-20", tz="UTC"),
        rescheduled_at=pd.NaT,
        cancelled_at=pd.NaT,
        use_utc=False,
    )
    objects = [customer_meeting_objects(meetings, attendees)]
    files = write_calendar_drops(objects, reps, drop_windows(14), tmp_path)
    event = next(e for p in files for e in parse(p).walk("VEVENT"))
    assert as_utc(event.start) == second_pass
    assert "DTSTART:20241103T063000Z" in files[0].read_text(encoding="utf-8")


@pytest.fixture
def faulty(world, tmp_path) -> tuple[Path, list[dict]]:
    out = tmp_path / "faulty"
    shutil.copytree(world.out, out)
    files = sorted((out / "landing/calendar").glob("*/*.ics"))
    return out, plant_calendar_faults(files, np.random.default_rng(9), broken_vevents=8, floating_times=5)


def vevent_chunks(path: Path) -> list[tuple[int, int, str]]:
    """(first line, last line, text) of each VEVENT, cut at the next BEGIN:VEVENT as a forgiving reader would."""
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    begins = [n for n, line in enumerate(lines) if line == "BEGIN:VEVENT"]
    stop = next(n for n, line in enumerate(lines) if line == "END:VCALENDAR")
    return [
        (begin + 1, end, "\r\n".join(lines[begin:end])) for begin, end in zip(begins, begins[1:] + [stop], strict=True)
    ]


def read_chunk(path: Path, chunk: str) -> icalendar.Event:
    """Parse and expand one VEVENT with the file's time zones; raises if it is broken."""
    text = path.read_bytes().decode("utf-8")
    timezones = text[text.find("BEGIN:VTIMEZONE") : text.rfind("END:VTIMEZONE\r\n") + 15] if "VTIMEZONE" in text else ""
    wrapped = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n{timezones}{chunk}\r\nEND:VCALENDAR\r\n"
    calendar = icalendar.Calendar.from_ical(wrapped)
    (event,) = calendar.walk("VEVENT")
    if event.errors:
        raise ValueError(event.errors)
    recurring_ical_events.of(calendar).between(*EXPANSION)
    return event


def test_planted_broken_vevents_fail_at_the_reported_line_while_the_other_events_still_read(faulty):
    out, manifest = faulty
    broken = [row for row in manifest if row["fault_type"] == "broken_vevent"]
    assert len(broken) == 8
    for row in broken:
        path = out / "landing" / row["file"]
        assert row["source"] == "calendar"
        chunks = vevent_chunks(path)
        hit = [c for c in chunks if c[0] <= row["line"] <= c[1]]
        assert len(hit) == 1
        with pytest.raises(Exception):  # noqa: B017 - icalendar and recurring-ical-events raise several types
            read_chunk(path, hit[0][2])
        assert f"UID:{row['record_id']}" in hit[0][2].replace("\r\n ", "")
        broken_lines = {r["line"] for r in manifest if r["file"] == row["file"] and r["fault_type"] == "broken_vevent"}
        for first, last, text in chunks:
            if not any(first <= line <= last for line in broken_lines):
                read_chunk(path, text)


def test_planted_floating_times_stay_valid_events_without_a_zone(faulty):
    out, manifest = faulty
    floating = [row for row in manifest if row["fault_type"] == "timestamp_without_zone"]
    assert len(floating) == 5
    for row in floating:
        path = out / "landing" / row["file"]
        line = path.read_bytes().decode("utf-8").split("\r\n")[row["line"] - 1]
        assert line.startswith("DTSTART:") and not line.endswith("Z")
        (chunk,) = [c for c in vevent_chunks(path) if c[0] <= row["line"] <= c[1]]
        event = read_chunk(path, chunk[2])
        assert str(event["UID"]) == row["record_id"]
        assert event.start.tzinfo is None and event.end.tzinfo is None


def test_fault_planting_is_deterministic_given_the_generator(world, tmp_path):
    manifests = []
    for attempt in ("a", "b"):
        shutil.copytree(world.out, tmp_path / attempt)
        files = sorted((tmp_path / attempt / "landing/calendar").glob("*/*.ics"))
        manifests.append(plant_calendar_faults(files, np.random.default_rng(4), broken_vevents=3, floating_times=3))
    assert manifests[0] == manifests[1]
    assert manifests[0][0]["file"].startswith("calendar/")
