-- A template version's own policy (template.yaml's `policy:`), kept as
-- the import read it so builds evaluate it without unpacking the archive.
ALTER TABLE template_versions ADD COLUMN policy_name TEXT;
ALTER TABLE template_versions ADD COLUMN policy_source TEXT;
