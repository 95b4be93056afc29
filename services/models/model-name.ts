export { sameModel } from '../../src/model-name';
