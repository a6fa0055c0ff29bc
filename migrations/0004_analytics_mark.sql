-- How far the tick has reported the bead history to Analytics Engine (a bead_events rowid), so
-- every domain event (bead.created, bead.status_changed, review.*, convoy.*) is written once,
-- whichever path (HTTP or tick) recorded it.
ALTER TABLE town ADD COLUMN analytics_mark INTEGER NOT NULL DEFAULT 0;
