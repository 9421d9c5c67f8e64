CREATE TABLE `audit_tree_nodes` (
	`org_id` text NOT NULL,
	`level` integer NOT NULL,
	`node_index` integer NOT NULL,
	`hash` blob NOT NULL,
	PRIMARY KEY(`org_id`, `level`, `node_index`),
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `he_key_revocations` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`key_version` integer NOT NULL,
	`record` blob NOT NULL,
	`fingerprint` blob NOT NULL,
	`reason` text NOT NULL,
	`revoked_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`org_id`,`key_version`) REFERENCES `he_keys`(`org_id`,`key_version`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `he_key_revocations_org_version_unique` ON `he_key_revocations` (`org_id`,`key_version`);--> statement-breakpoint
ALTER TABLE `audit_log` ADD `leaf_index` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `audit_log_org_leaf_unique` ON `audit_log` (`org_id`,`leaf_index`);--> statement-breakpoint
CREATE INDEX `contributions_robot_fk_idx` ON `contributions` (`robot_id`);--> statement-breakpoint
CREATE INDEX `dp_ledger_robot_fk_idx` ON `dp_ledger` (`robot_id`);--> statement-breakpoint
CREATE INDEX `enrollment_tokens_fleet_fk_idx` ON `enrollment_tokens` (`fleet_id`);--> statement-breakpoint
CREATE INDEX `releases_round_fk_idx` ON `releases` (`round_pk`);--> statement-breakpoint
CREATE INDEX `robots_fleet_fk_idx` ON `robots` (`fleet_id`);--> statement-breakpoint
CREATE INDEX `rounds_fleet_fk_idx` ON `rounds` (`fleet_id`);--> statement-breakpoint
CREATE INDEX `rounds_org_key_version_idx` ON `rounds` (`org_id`,`key_version`);--> statement-breakpoint
CREATE INDEX `sessions_org_idx` ON `sessions` (`org_id`);