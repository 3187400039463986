"""Runners that read files of customer texts and call the engine over them (today: `shopbot analyze`)."""
