CREATE TABLE `idempotency_keys` (
	`robot_id` text NOT NULL,
	`key` text NOT NULL,
	`request_sha256` text NOT NULL,
	`round_pk` text NOT NULL,
	`contribution_id` text NOT NULL,
	`response` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`robot_id`, `key`),
	FOREIGN KEY (`robot_id`) REFERENCES `robots`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`round_pk`) REFERENCES `rounds`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`contribution_id`) REFERENCES `contributions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_round_idx` ON `idempotency_keys` (`round_pk`);