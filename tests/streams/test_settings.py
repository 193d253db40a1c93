import pytest
from pydantic import ValidationError

from streams.settings import StreamSettings, TopicSettings


def test_topics_must_differ():
    with pytest.raises(ValidationError, match="must differ"):
        TopicSettings(dead_letters="clicks")
    assert TopicSettings(dead_letters="clicks.errors").dead_letters == "clicks.errors"


def test_history_retention_must_cover_the_allowed_lateness():
    with pytest.raises(ValidationError, match="history_retention_s"):
        StreamSettings(history_retention_s=1800, allowed_lateness_s=3600)
    assert StreamSettings(history_retention_s=3600, allowed_lateness_s=3600).history_retention_s == 3600
