"""Reading event CSVs: column mappings and unreadable values are clear errors or counted warnings."""

import logging
from datetime import UTC, datetime

import pytest

from schemas.csv_source import ColumnMapping, read_events_frame

HEADER = "user_id,poi_id,latitude,longitude,utc_time_approx,category_name\n"


def _csv(path, rows: list[str]):
    """A file of the default columns holding `rows`."""
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def test_a_mapping_names_each_field_once_and_only_optional_fields_map_to_nothing():
    assert ColumnMapping.parse("category=").category is None
    with pytest.raises(ValueError, match="names user_id twice"):
        ColumnMapping.parse("user_id=a,user_id=b")
    with pytest.raises(ValueError, match=r"^column mapping user_id: ") as error:
        ColumnMapping.parse("user_id=")
    assert "\n" not in str(error.value)


def test_a_time_column_that_reads_as_nothing_is_an_error_naming_it(tmp_path):
    path = tmp_path / "tsmc.csv"
    path.write_text(HEADER + "1,a,40.7,-74.0,Tue Apr 03 18:00:09 +0000 2012,Bar\n")
    with pytest.raises(ValueError, match=r"no value of column utc_time_approx reads as a time.*time_unit"):
        read_events_frame(path)


def test_unreadable_rows_are_left_out_and_counted(tmp_path, caplog):
    path = _csv(
        tmp_path / "mixed.csv",
        [
            "1,a,40.7,-74.0,2012-04-03T18:00:00Z,Bar",
            "1,b,40.7,-74.0,yesterday,Bar",
            "2,c,north,-74.0,2012-04-03T18:01:00Z,Bar",
            "2,d,40.8,-74.0,2012-04-03T18:02:00Z,Bar",
            "2,e f,40.8,-74.0,2012-04-03T18:03:00Z,Bar",  # what the stream refuses: ids with a space, a tab,
            "3\t,g,40.8,-74.0,2012-04-03T18:04:00Z,Bar",
            "3,h,40.8,-74.0,1969-12-31T23:59:00Z,Bar",  # a time before 1970, one in the future, a long category
            "3,i,40.8,-74.0,2199-01-01T00:00:00Z,Bar",
            "3,j,40.8,-74.0,2012-04-03T18:05:00Z," + "x" * 129,
        ],
    )
    with caplog.at_level(logging.WARNING):
        frame = read_events_frame(path)
    assert list(frame.item_id) == ["a", "d"]
    assert "1 rows without a readable time, 1 without valid coordinates and 5 the event schema refuses" in caplog.text


def test_generated_event_ids_are_ids_the_schema_takes_whatever_the_file_name(tmp_path):
    path = tmp_path / "my check-ins (NYC).csv"
    path.write_text(HEADER + "1,a,40.7,-74.0,2012-04-03T18:00:00Z,Bar\n")
    frame = read_events_frame(path)
    assert list(frame.event_id) == ["my_check-ins_(NYC):0"]


def test_coordinates_the_event_schema_refuses_are_left_out_like_unreadable_ones(tmp_path, caplog):
    path = _csv(
        tmp_path / "off_map.csv",
        [
            "1,a,40.7,-74.0,2012-04-03T18:00:00Z,Bar",
            "1,b,95.0,-74.0,2012-04-03T18:01:00Z,Bar",
            "2,c,40.7,inf,2012-04-03T18:02:00Z,Bar",
            "2,d,-90.0,180.0,2012-04-03T18:03:00Z,Bar",
        ],
    )
    with caplog.at_level(logging.WARNING):
        frame = read_events_frame(path)
    assert list(frame.item_id) == ["a", "d"]  # the bounds themselves are valid
    assert "2 without valid coordinates" in caplog.text


def test_a_folder_is_not_a_data_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder, not a data file"):
        read_events_frame(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_events_frame(tmp_path / "missing.csv")


def test_rows_the_event_schema_refuses_are_reported_and_skipped_when_asked(tmp_path, capsys):
    from schemas.csv_source import iter_click_events
    from streams.commands import warn_refused

    path = tmp_path / "ids.csv"
    rows = ["1,a,40.7,-74.0,2012-04-03T18:00:00Z,Bar", "1,b,40.7,-74.0,2012-04-03T18:01:00Z,Bar"]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    frame = read_events_frame(path)  # it leaves out rows with such ids itself: a frame from elsewhere may not
    frame.loc[1, "item_id"] = "b c"
    with pytest.raises(ValueError):
        list(iter_click_events(frame))
    refused = []
    events = list(iter_click_events(frame, on_invalid=lambda event_id, reason: refused.append((event_id, reason))))
    assert [e.item_id for e in events] == ["a"] and [event_id for event_id, _ in refused] == ["ids:1"]
    assert events[0].category == "Bar" and events[0].latitude == 40.7
    warn_refused(refused)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skipped 1 rows" in err and "first: event ids:1: " in err


def test_a_number_no_datetime_holds_is_a_bad_row_not_an_error_for_the_file(tmp_path, caplog):
    path = tmp_path / "unix.csv"
    path.write_text(
        "uid,venue,lat,lon,t\n"
        "1,a,40.7,-74.0,1333476000\n"
        "1,b,40.7,-74.0,1333476009500\n"  # milliseconds in a seconds column
        "1,c,40.7,-74.0,1e20\n"
        "1,d,40.7,-74.0,soon\n"
        "1,e,40.7,-74.0,1333476060.5\n"
    )
    mapping = ColumnMapping.parse("user_id=uid,item_id=venue,latitude=lat,longitude=lon,time=t,category=,time_unit=s")
    with caplog.at_level(logging.WARNING):
        frame = read_events_frame(path, mapping)
    assert list(frame.item_id) == ["a", "e"]
    assert list(frame.ts) == [1333476000.0, 1333476060.5]
    assert "1 rows without a readable time, 0 without valid coordinates and 2 the event schema refuses" in caplog.text
    millis = ColumnMapping.parse("user_id=uid,item_id=venue,latitude=lat,longitude=lon,time=t,category=,time_unit=ms")
    assert list(read_events_frame(path, millis).item_id) == ["a", "e", "b"]  # 1970-01-16, 1970-01-16, 2012-04-03
    assert "is the unit right" not in caplog.text
    path.write_text("uid,venue,lat,lon,t\n1,a,40.7,-74.0,1333476000\n")  # seconds declared as milliseconds
    read_events_frame(path, millis)
    assert "every time in column t is before 1990 (the newest: 1970-01-16T10:24:36" in caplog.text
    with pytest.raises(ValueError, match=r"^column mapping time_unit: "):
        ColumnMapping.parse("time_unit=fortnight")


def test_a_time_without_an_offset_is_utc_whatever_the_row_before_it_says(tmp_path):
    path = _csv(
        tmp_path / "zones.csv",
        [
            "1,a,40.7,-74.0,2012-04-03T18:00:09+05:00 ,Bar",  # a space after the offset too
            "1,b,40.7,-74.0,2012-04-03 13:00:10,Bar",
            "1,c,40.7,-74.0,2012-04-03T08:00:11-05:00,Bar",
            "1,d,40.7,-74.0,2012-04-03,Bar",
        ],
    )
    frame = read_events_frame(path)
    expected = {"d": "2012-04-03T00:00:00", "a": "2012-04-03T13:00:09", "b": "2012-04-03T13:00:10"}
    expected["c"] = "2012-04-03T13:00:11"
    got = {
        item: datetime.fromtimestamp(ts, UTC).isoformat()[:19] for item, ts in zip(frame.item_id, frame.ts, strict=True)
    }
    assert got == expected


def test_ids_and_categories_are_read_as_text(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text(
        "id,user_id,poi_id,latitude,longitude,utc_time_approx,category_name\n"
        "007,1,a,40.7,-74.0,2012-04-03T18:00:00Z,1.50\n"
        "7,1,b,40.7,-74.0,2012-04-03T18:01:00Z,2\n"
        "12345678901234567890123,1,c,40.7,-74.0,2012-04-03T18:02:00Z,2.0\n"
        "12345678901234567890124,1,d,40.7,-74.0,2012-04-03T18:03:00Z,3\n"
    )
    frame = read_events_frame(path, ColumnMapping(event_id="id"))
    assert list(frame.event_id) == ["007", "7", "12345678901234567890123", "12345678901234567890124"]
    assert list(frame.category) == ["1.50", "2", "2.0", "3"]


@pytest.mark.parametrize(("name", "content"), [("empty.csv", b""), ("plain.csv.gz", b"user_id,poi_id\n1,a\n")])
def test_a_file_that_does_not_read_as_csv_is_an_error_naming_it(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"^{name} does not read as CSV: "):
        read_events_frame(path)
