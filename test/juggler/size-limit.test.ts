/** What max_message_size means in model bytes, in the error a too large message gets (issue 16). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { modelBytesWithin, sizeText, tooLargeText } from '../../src/controls/juggler/size-limit.js';

describe('max_message_size in model bytes', () => {
  test('the error names the setting and both sizes in model bytes', () => {
    // The message a 60 MB put got: only characters, no setting, no model size.
    assert.equal(
      tooLargeText(80000116, 67108864),
      'message of 80000116 characters (a model of about 57.2 MiB) is over the limit of 67108864 ' +
        "characters: the Juggler control's max_message_size, which fits models up to about 48.0 MiB " +
        "(base64 in JSON is 4/3 of the model); raise it in the control's config",
    );
  });

  test('a model of the size named fits: its write request is within the limit', () => {
    for (const limit of [4096, 1 << 20, 67108864, 268435456]) {
      const n = modelBytesWithin(limit);
      const request = JSON.stringify({
        type: 'request',
        id: 123456,
        name: 'update_instance',
        data: {
          model_type: 'plugins.sklearn.RandomForestClassifier',
          instance_id: 99999,
          instance_b64: 'A'.repeat(4 * Math.ceil(n / 3)),
          expected_revision: 12,
        },
      });
      assert.ok(request.length <= limit, `${limit}: ${request.length}`);
    }
  });

  test('sizes for people', () => {
    assert.deepEqual(
      [sizeText(17), sizeText(2304), sizeText(50330880)],
      ['17 bytes', '2.3 KiB', '48.0 MiB'],
    );
  });
});
