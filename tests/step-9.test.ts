import { stepSuite } from './suite.js';

stepSuite(9);
