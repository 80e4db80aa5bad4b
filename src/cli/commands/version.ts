// `strand version`: this executable's version, its embedded Node and the CNI versions it speaks.
import type { Argv, CommandModule } from 'yargs';
import { SUPPORTED_VERSIONS } from '../../cni/versions.ts';
import { embeddedNodeVersion, strandVersion } from '../../version.ts';

function versionOptions(y: Argv<object>) {
  return y.option('json', { type: 'boolean', default: false, describe: 'print JSON' });
}

type VersionArgs = ReturnType<typeof versionOptions> extends Argv<infer U> ? U : never;

export function versionCommand(): CommandModule<object, VersionArgs> {
  return {
    command: 'version',
    describe: 'print the version of strand, its embedded Node and the CNI versions it speaks',
    builder: (y) => versionOptions(y),
    handler: (args) => {
      const info = { strand: strandVersion, node: embeddedNodeVersion, cniVersions: [...SUPPORTED_VERSIONS] };
      process.stdout.write(
        args.json
          ? `${JSON.stringify(info)}\n`
          : `strand ${info.strand}\nnode ${info.node}\nCNI ${info.cniVersions.join(', ')}\n`,
      );
    },
  };
}
