CREATE TABLE `hosts` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`address` text NOT NULL,
	`port` integer DEFAULT 22 NOT NULL,
	`user` text DEFAULT 'root' NOT NULL,
	`relay_id` text,
	`tags` text DEFAULT '[]' NOT NULL,
	`monitor_only` integer DEFAULT false NOT NULL,
	`status` text DEFAULT 'unknown' NOT NULL,
	`status_reason` text,
	`os_id` text,
	`os_name` text,
	`os_version` text,
	`os_pretty_name` text,
	`kernel` text,
	`arch` text,
	`boot_id` text,
	`booted_at` integer,
	`package_manager` text,
	`package_managers` text DEFAULT '[]' NOT NULL,
	`proxmox` text,
	`docker` integer DEFAULT false NOT NULL,
	`updates_count` integer,
	`security_count` integer,
	`reboot_required` integer,
	`reboot_reason` text,
	`last_scan_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`relay_id`) REFERENCES `relays`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `hosts_target` ON `hosts` (`relay_id`,`address`,`port`,`user`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`host_id` text NOT NULL,
	`relay_id` text,
	`status` text DEFAULT 'queued' NOT NULL,
	`exit_code` integer,
	`summary` text,
	`error_code` text,
	`error_message` text,
	`requested_by` text,
	`created_at` integer NOT NULL,
	`dispatched_at` integer,
	`started_at` integer,
	`finished_at` integer,
	`deadline_at` integer,
	FOREIGN KEY (`host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `jobs_host` ON `jobs` (`host_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `jobs_relay_status` ON `jobs` (`relay_id`,`status`);--> statement-breakpoint
CREATE TABLE `relays` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`public_key` text,
	`version` text,
	`hostname` text,
	`created_at` integer NOT NULL,
	`last_seen_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `relays_token_hash_unique` ON `relays` (`token_hash`);