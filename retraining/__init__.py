"""The learning loop: retrain from moderators' labels, gate a candidate, promote or roll back (a promotion re-scores
recent uploads), calibrate each platform's threshold."""
