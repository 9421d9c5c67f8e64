CREATE TABLE `audit_log` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`org_id` text NOT NULL,
	`actor_type` text NOT NULL,
	`actor_id` text NOT NULL,
	`action` text NOT NULL,
	`target` text NOT NULL,
	`details` text NOT NULL,
	`leaf_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `audit_log_org_seq_idx` ON `audit_log` (`org_id`,`seq`);--> statement-breakpoint
CREATE TABLE `contributions` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`round_pk` text NOT NULL,
	`robot_id` text NOT NULL,
	`seq` integer NOT NULL,
	`package_sha256` text NOT NULL,
	`package_bytes` integer NOT NULL,
	`package_fingerprint` blob NOT NULL,
	`package_signature` blob NOT NULL,
	`ciphertext_sha256` blob NOT NULL,
	`aggregate_sha256` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`round_pk`) REFERENCES `rounds`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`robot_id`) REFERENCES `robots`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `contributions_round_robot_unique` ON `contributions` (`round_pk`,`robot_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `contributions_round_seq_unique` ON `contributions` (`round_pk`,`seq`);--> statement-breakpoint
CREATE INDEX `contributions_robot_idx` ON `contributions` (`org_id`,`robot_id`);--> statement-breakpoint
CREATE TABLE `dp_ledger` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`robot_id` text NOT NULL,
	`round_pk` text NOT NULL,
	`epsilon_after` real NOT NULL,
	`delta` real NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`robot_id`) REFERENCES `robots`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`round_pk`) REFERENCES `rounds`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `dp_ledger_round_robot_unique` ON `dp_ledger` (`round_pk`,`robot_id`);--> statement-breakpoint
CREATE INDEX `dp_ledger_fleet_idx` ON `dp_ledger` (`org_id`,`fleet_id`);--> statement-breakpoint
CREATE TABLE `enrollment_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`secret_hash` blob NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`fleet_id`) REFERENCES `fleets`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `enrollment_tokens_fleet_idx` ON `enrollment_tokens` (`org_id`,`fleet_id`);--> statement-breakpoint
CREATE TABLE `fleets` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`envelope` text NOT NULL,
	`dp_epsilon_budget` real,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `fleets_org_name_unique` ON `fleets` (`org_id`,`name`);--> statement-breakpoint
CREATE TABLE `he_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`key_version` integer NOT NULL,
	`record` blob NOT NULL,
	`fingerprint` blob NOT NULL,
	`param_set_id` text NOT NULL,
	`parms_id` blob NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `he_keys_org_version_unique` ON `he_keys` (`org_id`,`key_version`);--> statement-breakpoint
CREATE TABLE `officer_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`public_key` blob NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `officer_keys_org_key_unique` ON `officer_keys` (`org_id`,`public_key`);--> statement-breakpoint
CREATE TABLE `organizations` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `releases` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`release_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`round_pk` text NOT NULL,
	`release_version` integer NOT NULL,
	`kind` text NOT NULL,
	`manifest` blob NOT NULL,
	`fingerprint` blob NOT NULL,
	`payload_sha256` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`fleet_id`) REFERENCES `fleets`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`round_pk`) REFERENCES `rounds`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `releases_fleet_version_unique` ON `releases` (`fleet_id`,`release_version`);--> statement-breakpoint
CREATE UNIQUE INDEX `releases_org_release_unique` ON `releases` (`org_id`,`release_id`);--> statement-breakpoint
CREATE TABLE `robot_nonces` (
	`robot_id` text NOT NULL,
	`nonce` text NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`robot_id`, `nonce`),
	FOREIGN KEY (`robot_id`) REFERENCES `robots`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `robot_nonces_expires_idx` ON `robot_nonces` (`expires_at`);--> statement-breakpoint
CREATE TABLE `robots` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`name` text NOT NULL,
	`enrollment_id` text NOT NULL,
	`dsa_public_key` blob NOT NULL,
	`kem_public_key` blob NOT NULL,
	`attestation` blob NOT NULL,
	`enrolled_at` integer NOT NULL,
	`revoked_at` integer,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`fleet_id`) REFERENCES `fleets`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `robots_fleet_idx` ON `robots` (`org_id`,`fleet_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `robots_enrollment_unique` ON `robots` (`enrollment_id`);--> statement-breakpoint
CREATE TABLE `rounds` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`round_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`state` text NOT NULL,
	`config` blob NOT NULL,
	`config_fingerprint` blob NOT NULL,
	`key_version` integer NOT NULL,
	`quorum` integer NOT NULL,
	`max_contributors` integer NOT NULL,
	`deadline` integer NOT NULL,
	`value_count` integer NOT NULL,
	`ciphertext_count` integer NOT NULL,
	`privacy` text NOT NULL,
	`contribution_count` integer DEFAULT 0 NOT NULL,
	`aggregate_sha256` text,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`finalized_at` integer,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`fleet_id`) REFERENCES `fleets`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `rounds_org_round_unique` ON `rounds` (`org_id`,`round_id`);--> statement-breakpoint
CREATE INDEX `rounds_fleet_state_idx` ON `rounds` (`org_id`,`fleet_id`,`state`);--> statement-breakpoint
CREATE TABLE `sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`user_id` text NOT NULL,
	`secret_hash` blob NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `sessions_user_idx` ON `sessions` (`user_id`);--> statement-breakpoint
CREATE INDEX `sessions_expires_idx` ON `sessions` (`expires_at`);--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`name` text NOT NULL,
	`password_hash` text NOT NULL,
	`roles` text NOT NULL,
	`created_at` integer NOT NULL,
	`disabled_at` integer,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_name_unique` ON `users` (`name`);--> statement-breakpoint
CREATE INDEX `users_org_idx` ON `users` (`org_id`);