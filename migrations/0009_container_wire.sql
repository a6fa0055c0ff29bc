-- The container wire (issue 17): when the container token was last pushed to the town's
-- container (POST /refresh-token, hourly while there is work or a live mayor), and a digest of
-- the X-Town-Config the container last accepted (POST /sync-config or a start), so a config
-- change is pushed once.
ALTER TABLE town ADD COLUMN container_token_pushed_at INTEGER;
ALTER TABLE town ADD COLUMN container_config_digest TEXT;
