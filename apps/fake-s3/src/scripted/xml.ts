/** The few XML bodies the S3 REST API needs, written by hand: the shapes are small and fixed. */

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (character) => `&#${character.charCodeAt(0)};`);
}

function element(name: string, value: string | number | boolean): string {
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

export function errorXml(code: string, message: string, resource: string, requestId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' +
    element('Code', code) +
    element('Message', message) +
    element('Resource', resource) +
    element('RequestId', requestId) +
    '</Error>'
  );
}

export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

export interface ListPage {
  bucket: string;
  prefix: string;
  delimiter: string;
  maxKeys: number;
  objects: readonly ListedObject[];
  commonPrefixes: readonly string[];
  nextToken?: string;
  continuationToken?: string;
}

export function listXml(page: ListPage): string {
  const contents = page.objects.map(
    (object) =>
      `<Contents>${element('Key', object.key)}${element('LastModified', object.lastModified.toISOString())}` +
      `${element('ETag', `"${object.etag}"`)}${element('Size', object.size)}${element('StorageClass', 'STANDARD')}</Contents>`,
  );
  const prefixes = page.commonPrefixes.map(
    (prefix) => `<CommonPrefixes>${element('Prefix', prefix)}</CommonPrefixes>`,
  );
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    element('Name', page.bucket) +
    element('Prefix', page.prefix) +
    (page.delimiter ? element('Delimiter', page.delimiter) : '') +
    element('MaxKeys', page.maxKeys) +
    element('KeyCount', page.objects.length + page.commonPrefixes.length) +
    element('IsTruncated', page.nextToken !== undefined) +
    (page.continuationToken ? element('ContinuationToken', page.continuationToken) : '') +
    (page.nextToken ? element('NextContinuationToken', page.nextToken) : '') +
    contents.join('') +
    prefixes.join('') +
    '</ListBucketResult>'
  );
}
