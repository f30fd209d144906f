"""The moderator console (review queue, decisions, stats). Its pages arrive with issue #6."""
