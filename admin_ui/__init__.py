"""The moderator console: review queue, decisions (keyboard and bulk), heatmaps, stats and the audit log."""
