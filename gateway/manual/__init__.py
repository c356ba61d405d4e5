"""Manual readings (quality 6, `manual`): a person's patrol, supplementary or comparison
measurement of a point (GB 39496-2020 §5.5.1, §5.5.3). `validate.py` checks one, `grade.py`
grades it with the point's threshold detector and finds the automatic value to compare it with,
`intake.py` is the daemon's side: events, publication, storage."""
