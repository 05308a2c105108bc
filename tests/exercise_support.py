"""Helpers for the lesson tests: an exercise check accepts an answer, or reports it not attempted."""


def accepts(capsys, fn, *args):
    fn(*args)
    assert "correct" in capsys.readouterr().out


def not_attempted(capsys, fn, *args):
    fn(*args)
    assert "not attempted" in capsys.readouterr().out
