-- The audit log becomes a Merkle log (server/db/audit.ts): give every existing row its leaf index,
-- 0-based and dense per organization in the order the rows were written (seq). The append-only trigger
-- is lifted only inside this migration's transaction. The tree nodes of these leaves are computed by
-- the server from their stored leaf hashes on first use (SQL has no SHA-256).
DROP TRIGGER IF EXISTS `audit_log_no_update`;
--> statement-breakpoint
UPDATE `audit_log` SET `leaf_index` = (
	SELECT count(*) FROM `audit_log` AS `earlier`
	WHERE `earlier`.`org_id` = `audit_log`.`org_id` AND `earlier`.`seq` < `audit_log`.`seq`
) WHERE `leaf_index` IS NULL;
--> statement-breakpoint
CREATE TRIGGER `audit_log_no_update` BEFORE UPDATE ON `audit_log`
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER `audit_tree_nodes_no_update` BEFORE UPDATE ON `audit_tree_nodes`
BEGIN
	SELECT RAISE(ABORT, 'audit_tree_nodes is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER `audit_tree_nodes_no_delete` BEFORE DELETE ON `audit_tree_nodes`
BEGIN
	SELECT RAISE(ABORT, 'audit_tree_nodes is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER `he_key_revocations_no_update` BEFORE UPDATE ON `he_key_revocations`
BEGIN
	SELECT RAISE(ABORT, 'he_key_revocations is append-only');
END;
--> statement-breakpoint
CREATE TRIGGER `he_key_revocations_no_delete` BEFORE DELETE ON `he_key_revocations`
BEGIN
	SELECT RAISE(ABORT, 'he_key_revocations is append-only');
END;
