/* Every benchmark section, in the order `make bench` runs them. */
import type { Section } from '../lib/section';
import { buildSection } from './build';
import { cliSection } from './cli';
import { imagesSection } from './images';
import { criSection } from './cri';
import { nativeShimSection } from './native-shim';
import { networkSection } from './network';
import { supervisorSection } from './supervisor';

/** The sections; add new ones here. */
export const SECTIONS: readonly Section[] = [cliSection, supervisorSection, criSection, networkSection, imagesSection, buildSection, nativeShimSection];
