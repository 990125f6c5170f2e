"""The parts of :func:`derive.check.check_answer`: the problem and its draws (``problem``), interval
arithmetic (``intervals``, ``evaluate``), factor fitting (``fit``) and the first wrong step (``locate``)."""
