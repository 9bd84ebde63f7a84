// The simulated state of a dnf, zypper or apk host: its pending updates (from the recorded
// outputs its profile starts with), what each scan command prints for them now, and the run
// log of an upgrade in the format of the recorded real ones (relay/pkg/fixtures: dnf and
// zypper captured from the real tools here, apk published; sim/fixtures/README.md).
import { parseCheckUpdate, parseSecurityAdvisories } from '../relay/pkg/dnf.ts';
import { parsePatchInfo, parseSecurityPatches, parseZypperUpdates } from '../relay/pkg/zypper.ts';
import { parseApkUpgradable } from '../relay/pkg/apk.ts';
import type { Reply } from './host.ts';

export type RpmApkGroup = 'dnf' | 'zypper' | 'apk';

export function isRpmApk(group: string): group is RpmApkGroup {
  return group === 'dnf' || group === 'zypper' || group === 'apk';
}

export interface Pending {
  name: string;
  arch: string;
  old: string;
  new: string;
  repo: string;
  advisory: { id: string; severity: string | null } | null;
  /** The origin (apk) or summary shown in lists. */
  origin: string;
}

/** The recorded scan outputs a profile of this group starts from, by command kind. */
export interface RpmApkRecordings {
  list: string;
  security?: string;
  patchInfo?: string;
}

export function loadPending(group: RpmApkGroup, rec: RpmApkRecordings, installed: (nameArch: string) => string | null): Pending[] {
  if (group === 'dnf') {
    const sec = parseSecurityAdvisories(rec.security ?? '');
    return parseCheckUpdate(rec.list).map((u) => {
      const adv = sec.get(`${u.name}.${u.arch}`)?.[0] ?? null;
      return { name: u.name, arch: u.arch, old: installed(`${u.name}.${u.arch}`) ?? '0-0', new: u.version, repo: u.repository, advisory: adv, origin: '' };
    });
  }
  if (group === 'zypper') {
    const patches = parseSecurityPatches(rec.security ?? '');
    const fixes = parsePatchInfo(rec.patchInfo ?? '');
    const byPkg = new Map<string, { id: string; severity: string | null }>();
    for (const p of patches) for (const n of fixes.get(p.id) ?? []) byPkg.set(n, p);
    return parseZypperUpdates(rec.list, 'package').map(({ attrs, alias }) => ({
      name: attrs.name,
      arch: attrs.arch ?? 'noarch',
      old: attrs['edition-old'] ?? '',
      new: attrs.edition,
      repo: alias,
      advisory: byPkg.get(attrs.name) ?? null,
      origin: attrs.name,
    }));
  }
  return parseApkUpgradable(rec.list).map((u) => ({ name: u.name, arch: u.arch, old: u.currentVersion ?? '', new: u.newVersion, repo: '', advisory: null, origin: u.repository }));
}

function xmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const ZYPPER_HEAD = "<?xml version='1.0'?>\n<stream>\n<message type=\"info\">Loading repository data...</message>\n<message type=\"info\">Reading installed packages...</message>\n";

/** What a scan command prints for these pending updates, in the recorded format. */
export function renderScan(group: RpmApkGroup, kind: string, pending: Pending[]): Reply | undefined {
  if (group === 'dnf' && kind === 'dnf-list') {
    if (pending.length === 0) return { stdout: '', stderr: '', code: 0 };
    return { stdout: '\n' + pending.map((p) => `${`${p.name}.${p.arch}`.padEnd(37)} ${p.new.padEnd(28)} ${p.repo}\n`).join(''), stderr: '', code: 100 };
  }
  if (group === 'dnf' && kind === 'dnf-security') {
    const lines = pending.filter((p) => p.advisory).map((p) => `${p.advisory!.id} ${`${p.advisory!.severity ?? 'Unknown'}/Sec.`.padEnd(14)} ${p.name}-${p.new}.${p.arch}\n`);
    return { stdout: lines.join(''), stderr: '', code: 0 };
  }
  if (group === 'zypper' && kind === 'zypper-list') {
    const items = pending
      .map((p) => `<update kind="package" name="${xmlAttr(p.name)}" edition="${xmlAttr(p.new)}" arch="${xmlAttr(p.arch)}" edition-old="${xmlAttr(p.old)}"><summary>${xmlAttr(p.name)}</summary><description/><license/><source url="file:/srv/repo" alias="${xmlAttr(p.repo)}"/></update>`)
      .join('');
    return { stdout: `${ZYPPER_HEAD}<update-status version="0.6">\n<update-list>\n${items}</update-list>\n</update-status>\n</stream>\n`, stderr: '', code: 0 };
  }
  if (group === 'zypper' && kind === 'zypper-patches') {
    const seen = new Set<string>();
    const items = pending
      .filter((p) => p.advisory && !seen.has(p.advisory.id) && seen.add(p.advisory.id))
      .map((p) => `<update kind="patch" name="${xmlAttr(p.advisory!.id)}" edition="1" arch="noarch" status="needed" category="security" severity="${xmlAttr(p.advisory!.severity ?? 'unspecified')}" pkgmanager="false" restart="false" interactive="false"><summary>${xmlAttr(p.name)} security update</summary><description/><license/><source url="file:/srv/repo" alias="${xmlAttr(p.repo)}"/><issue-list/></update>`)
      .join('');
    return { stdout: `${ZYPPER_HEAD}<update-status version="0.6">\n<update-list>\n${items}</update-list>\n</update-status>\n</stream>\n`, stderr: '', code: 0 };
  }
  if (group === 'apk' && kind === 'apk-list') {
    return { stdout: pending.map((p) => `${p.name}-${p.new} ${p.arch} {${p.origin}} (GPL-2.0-only) [upgradable from: ${p.name}-${p.old}]\n`).join(''), stderr: '', code: 0 };
  }
  return undefined;
}

/** `zypper info -t patch ID…` for the patches still pending (the recorded layout). */
export function renderPatchInfo(ids: string[], pending: Pending[]): Reply {
  const blocks = ids.map((id) => {
    const pkgs = pending.filter((p) => p.advisory?.id === id);
    const head = `Information for patch ${id}:`;
    const conflicts = pkgs.length === 1 ? `Conflicts   : ${pkgs[0].name} < ${pkgs[0].new}` : `Conflicts   : [${pkgs.length}]\n${pkgs.map((p) => `    ${p.name}.${p.arch} < ${p.new}`).join('\n')}`;
    return `\n\n${head}\n${'-'.repeat(head.length)}\nRepository  : ${pkgs[0]?.repo ?? ''}\nName        : ${id}\nCategory    : security\n${conflicts}\n`;
  });
  return { stdout: `Loading repository data...\nReading installed packages...\n${blocks.join('')}`, stderr: '', code: 0 };
}

/** The run log of upgrading `chosen`, in the format of the recorded real logs. */
export function upgradeLog(group: RpmApkGroup, chosen: Pending[]): string {
  if (group === 'dnf') {
    if (chosen.length === 0) return 'Dependencies resolved.\nNothing to do.\nComplete!\n';
    const rows = chosen.map((p) => ` ${p.name.padEnd(17)} ${p.arch.padEnd(15)} ${p.new.padEnd(15)} ${p.repo.padEnd(22)} 5.4 k`);
    const n = chosen.length;
    const steps = [
      ...chosen.map((p, i) => `  Upgrading        : ${p.name}-${p.new}.${p.arch}`.padEnd(73) + ` ${i + 1}/${2 * n} `),
      ...chosen.map((p, i) => `  Cleanup          : ${p.name}-${p.old}.${p.arch}`.padEnd(73) + ` ${n + i + 1}/${2 * n} `),
    ];
    return [
      'Dependencies resolved.',
      '='.repeat(80),
      ' Package           Architecture    Version         Repository              Size',
      '='.repeat(80),
      'Upgrading:',
      ...rows,
      '',
      'Transaction Summary',
      '='.repeat(80),
      `Upgrade  ${n} Package${n === 1 ? '' : 's'}`,
      '',
      'Downloading Packages:',
      'Running transaction check',
      'Transaction check succeeded.',
      'Running transaction test',
      'Transaction test succeeded.',
      'Running transaction',
      ...steps,
      '',
      'Upgraded:',
      ...chosen.map((p) => `  ${p.name}-${p.new}.${p.arch}`),
      '',
      'Complete!',
      '',
    ].join('\n');
  }
  if (group === 'zypper') {
    const n = chosen.length;
    if (n === 0) return 'Loading repository data...\nReading installed packages...\nNothing to do.\n';
    return [
      'Loading repository data...',
      'Reading installed packages...',
      '',
      `The following ${n} package${n === 1 ? ' is' : 's are'} going to be upgraded:`,
      `  ${chosen.map((p) => p.name).join(' ')}`,
      '',
      `${n} package${n === 1 ? '' : 's'} to upgrade.`,
      'Continue? [y/n/v/...? shows all options] (y): y',
      ...chosen.map((p, i) => `Retrieving package ${p.name}-${p.new}.${p.arch} (${i + 1}/${n}),   5.4 KiB (    0   B unpacked)`),
      '',
      'Checking for file conflicts: [......done]',
      ...chosen.map((p, i) => `(${i + 1}/${n}) Installing: ${p.name}-${p.new}.${p.arch} [......done]`),
      '',
    ].join('\n');
  }
  const n = chosen.length;
  return [...chosen.map((p, i) => `(${i + 1}/${n}) Upgrading ${p.name} (${p.old} -> ${p.new})`), `OK: ${8 + n} MiB in ${20 + n} packages`, ''].join('\n');
}

/** A kernel package among these, as each family names them. */
export function isKernel(group: RpmApkGroup, name: string): boolean {
  if (group === 'apk') return /^linux-[a-z0-9]+$/.test(name) && !name.startsWith('linux-firmware');
  return /^kernel(?:-core|-default|-uek)?$/.test(name);
}
