import type { Config } from '../config.ts';

/** Further CLI commands contributed by domains (backups). */
export interface CliCommand {
  usage: string;
  matches(argv: string[]): boolean;
  run(argv: string[], config: Config): Promise<number>;
}

export const cliCommands: CliCommand[] = [];
