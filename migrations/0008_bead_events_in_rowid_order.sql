-- The history's index by time served only the debug status page's latest 20 entries, which
-- rowid order (the order of recording) serves as well; every history row paid for it, one more
-- b-tree written beside the table and the index by bead.
DROP INDEX idx_bead_events_created;
