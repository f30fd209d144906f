"""The bank of confirmed fakes (PDQ hashes): banking a moderator's fake, matching new uploads, import and export."""
