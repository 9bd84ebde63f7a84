CREATE TABLE `proxmox_guests` (
	`node_host_id` text NOT NULL,
	`vmid` integer NOT NULL,
	`kind` text NOT NULL,
	`name` text NOT NULL,
	`status` text NOT NULL,
	`node` text NOT NULL,
	`snapshots` integer NOT NULL,
	`snapshot_reason` text,
	`reachable` integer NOT NULL,
	`reach_reason` text,
	`ostype` text,
	`seen_at` integer NOT NULL,
	PRIMARY KEY(`node_host_id`, `vmid`),
	FOREIGN KEY (`node_host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
DROP INDEX `hosts_target`;--> statement-breakpoint
ALTER TABLE `hosts` ADD `oldest_security_at` integer;--> statement-breakpoint
ALTER TABLE `hosts` ADD `guest_of` text;--> statement-breakpoint
ALTER TABLE `hosts` ADD `guest_kind` text;--> statement-breakpoint
ALTER TABLE `hosts` ADD `guest_vmid` integer;--> statement-breakpoint
ALTER TABLE `hosts` ADD `guest_snapshots` text;--> statement-breakpoint
CREATE UNIQUE INDEX `hosts_guest` ON `hosts` (`guest_of`,`guest_vmid`);--> statement-breakpoint
CREATE UNIQUE INDEX `hosts_target` ON `hosts` (`relay_id`,`address`,`port`,`user`) WHERE "hosts"."guest_of" is null;--> statement-breakpoint
DROP INDEX `jobs_one_change_per_host`;--> statement-breakpoint
ALTER TABLE `jobs` ADD `snapshot` text;--> statement-breakpoint
CREATE UNIQUE INDEX `jobs_one_change_per_host` ON `jobs` (`host_id`) WHERE "jobs"."kind" in ('upgrade', 'reboot', 'stack-update', 'rollback') and "jobs"."status" in ('queued', 'dispatched', 'running');