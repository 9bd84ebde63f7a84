CREATE TABLE `notify_channels` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`via` text DEFAULT 'worker' NOT NULL,
	`events` text DEFAULT '[]' NOT NULL,
	`tags` text DEFAULT '[]' NOT NULL,
	`min_severity` text DEFAULT 'info' NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`max_per_hour` integer DEFAULT 30 NOT NULL,
	`config` text DEFAULT '{}' NOT NULL,
	`secret` text,
	`last_sent_at` integer,
	`last_error` text,
	`last_error_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `notify_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`channel_id` text NOT NULL,
	`event` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`message` text NOT NULL,
	`error` text,
	`created_at` integer NOT NULL,
	`next_attempt_at` integer,
	`sent_at` integer,
	FOREIGN KEY (`channel_id`) REFERENCES `notify_channels`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `notify_deliveries_channel` ON `notify_deliveries` (`channel_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `notify_deliveries_due` ON `notify_deliveries` (`next_attempt_at`) WHERE "notify_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE TABLE `notify_events` (
	`id` text PRIMARY KEY NOT NULL,
	`event` text NOT NULL,
	`host_id` text,
	`data` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `notify_events_created` ON `notify_events` (`created_at`);--> statement-breakpoint
CREATE TABLE `notify_state` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `api_tokens` ADD `created_by_user_id` text;--> statement-breakpoint
ALTER TABLE `audit` ADD `detail` text;--> statement-breakpoint
ALTER TABLE `relays` ADD `public_key_offered` text;--> statement-breakpoint
CREATE INDEX `hosts_name` ON `hosts` ("name" collate nocase);--> statement-breakpoint
CREATE INDEX `jobs_kind_created` ON `jobs` (`kind`,`created_at`);