"""Reading event CSVs: column mappings and unreadable values are clear errors or counted warnings."""

import logging

import pytest

from schemas.csv_source import ColumnMapping, read_events_frame

HEADER = "user_id,poi_id,latitude,longitude,utc_time_approx,category_name\n"


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
    path = tmp_path / "mixed.csv"
    rows = [
        "1,a,40.7,-74.0,2012-04-03T18:00:00Z,Bar",
        "1,b,40.7,-74.0,yesterday,Bar",
        "2,c,north,-74.0,2012-04-03T18:01:00Z,Bar",
        "2,d,40.8,-74.0,2012-04-03T18:02:00Z,Bar",
        "2,e f,40.8,-74.0,2012-04-03T18:03:00Z,Bar",  # what the stream refuses: ids with a space, a tab,
        "3\t,g,40.8,-74.0,2012-04-03T18:04:00Z,Bar",
        "3,h,40.8,-74.0,1969-12-31T23:59:00Z,Bar",  # a time before 1970, one in the future, a long category
        "3,i,40.8,-74.0,2199-01-01T00:00:00Z,Bar",
        "3,j,40.8,-74.0,2012-04-03T18:05:00Z," + "x" * 129,
    ]
    path.write_text(HEADER + "\n".join(rows) + "\n")
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
    path = tmp_path / "off_map.csv"
    rows = [
        "1,a,40.7,-74.0,2012-04-03T18:00:00Z,Bar",
        "1,b,95.0,-74.0,2012-04-03T18:01:00Z,Bar",
        "2,c,40.7,inf,2012-04-03T18:02:00Z,Bar",
        "2,d,-90.0,180.0,2012-04-03T18:03:00Z,Bar",
    ]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING):
        frame = read_events_frame(path)
    assert list(frame.item_id) == ["a", "d"]  # the bounds themselves are valid
    assert "2 without valid coordinates" in caplog.text


def test_a_folder_is_not_a_data_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_events_frame(tmp_path)


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
    events = list(iter_click_events(frame, on_invalid=lambda row, reason: refused.append((row, reason))))
    assert [e.item_id for e in events] == ["a"] and [row for row, _ in refused] == [1]
    warn_refused(refused)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skipped 1 rows" in err and "row 2" in err
