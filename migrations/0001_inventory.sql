CREATE TABLE `host_updates` (
	`host_id` text NOT NULL,
	`name` text NOT NULL,
	`arch` text NOT NULL,
	`current_version` text,
	`new_version` text NOT NULL,
	`repository` text NOT NULL,
	`security` integer NOT NULL,
	PRIMARY KEY(`host_id`, `name`, `arch`),
	FOREIGN KEY (`host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
ALTER TABLE `hosts` ADD `privilege` text;--> statement-breakpoint
ALTER TABLE `hosts` ADD `held` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `hosts` ADD `scan_warnings` text DEFAULT '[]' NOT NULL;