// The `scan` operation: one SSH session; probe the host (the probe's own script), pick the
// package-manager module from what the probe found, list pending updates (refreshing the
// lists first unless asked not to) and check whether a reboot is needed.
import { proxmoxScanExtras } from '../proxmox/scan-extras.ts';
import { openTargetSession } from '../proxmox/target.ts';
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { moduleFor } from '../pkg/index.ts';
import type { OpContext } from './context.ts';
import { DEFAULT_PROBE_TIMEOUT_MS, probeSession } from './probe.ts';

export type ScanResult = OperationResult<'scan'>;

export async function runScan(params: OperationParams<'scan'>, ctx: OpContext): Promise<ScanResult> {
  const session = await openTargetSession(params.target, ctx);
  try {
    const probe = await probeSession(session, ctx.commandTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
    const mod = moduleFor(probe);
    if (!mod) {
      const found = probe.packageManagers.length > 0 ? `only ${probe.packageManagers.join(', ')}, which PatchMan cannot scan yet` : 'no package manager PatchMan knows';
      return {
        probe,
        packageManager: null,
        updates: [],
        held: [],
        reboot: { required: false, reason: null },
        warnings: [`unsupported OS: ${probe.os.prettyName} has ${found}`],
        hostKey: session.hostKey.fingerprint,
      };
    }
    const timeoutMs = ctx.commandTimeoutMs;
    const listed = await mod.scan(session, { privilege: probe.privilege, refresh: params.refresh, timeoutMs });
    const reboot = await mod.rebootCheck(session, probe, { timeoutMs });
    const warnings = [...listed.warnings];
    const extras = await proxmoxScanExtras(session, probe, warnings);
    return { probe, packageManager: mod.name, updates: listed.updates, held: listed.held, reboot, warnings, hostKey: session.hostKey.fingerprint, ...extras };
  } finally {
    session.close();
  }
}
